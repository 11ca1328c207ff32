"""A ViT trunk over an already flattened token sequence: prefix token, positional embedding, blocks, norm."""

from __future__ import annotations

import torch
from torch import nn

from vitzoo.config import TransformerConfig
from vitzoo.layers import make_blocks, run_blocks
from vitzoo.layers.block import collect_blocks
from vitzoo.layers.init import init_vit_weights
from vitzoo.layers.pos_embed import learned_embedding, sincos_table
from vitzoo.layers.token_merging import Merging, merge_plan, run_merging, weighted_mean
from vitzoo.layers.visible import gather_tokens


class TokenTransformer(nn.Module):
    """``(B, L, D)`` -> ``(B, P + L, D)``: prepend the class token (``P = 1``, if any), add positions, encode.

    Parameter names match a timm ViT's (``cls_token``, ``pos_embed``, ``norm_pre``, ``blocks``, ``norm``) so
    image checkpoints map onto it one to one. ``pos_embed`` may be passed in (a table resampled for another grid).
    ``pos_embed_type="sincos"`` starts the table as the fixed sinusoid table and never trains it (VideoMAE): it
    stays in the state dict and is resampled like a learned one, but no gradient reaches it. A config with
    ``pre_norm`` (CLIP) adds a LayerNorm before the blocks.
    """

    def __init__(
        self,
        cfg: TransformerConfig,
        *,
        num_tokens: int,
        depth: int,
        class_token: bool,
        pos_drop: float = 0.0,
        final_norm: bool = True,
        pos_embed_type: str = "learned",
    ) -> None:
        super().__init__()
        dim = cfg.embed_dim
        self.num_prefix_tokens = int(class_token)
        self.grad_checkpointing = False
        self.merging: Merging | None = None  # token merging (ToMe), off
        self.token_sizes: torch.Tensor | None = None  # (B, P + L', 1) patches per token of the last merged forward
        self.fixed_pos_embed = pos_embed_type == "sincos"
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if class_token else None
        self.pos_embed = learned_embedding(1, self.num_prefix_tokens + num_tokens, dim)
        self.pos_drop = nn.Dropout(pos_drop)
        pre_norm = getattr(cfg, "pre_norm", False)
        self.norm_pre = nn.LayerNorm(dim, eps=cfg.norm_eps) if pre_norm else nn.Identity()
        self.blocks = make_blocks(cfg, depth)
        self.norm = nn.LayerNorm(dim, eps=cfg.norm_eps) if final_norm else nn.Identity()
        self.apply(init_vit_weights)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1e-6)
        if self.fixed_pos_embed:
            self.pos_embed = nn.Parameter(sincos_table(*self.pos_embed.shape[1:]), requires_grad=False)

    def embed(self, x: torch.Tensor, pos_embed: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, L, D)`` -> ``(B, P + L, D)`` with the class token prepended and positions added."""
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1 + L, D)
        pos_embed = self.pos_embed if pos_embed is None else pos_embed
        if self.fixed_pos_embed:  # a fixed table: never trained, even after resample() made it a fresh Parameter
            pos_embed = pos_embed.detach()
        return self.norm_pre(self.pos_drop(x + pos_embed))

    def embed_visible(
        self, x: torch.Tensor, visible: torch.Tensor, pos_embed: torch.Tensor | None = None
    ) -> torch.Tensor:
        """:meth:`embed` keeping only the tokens at ``visible`` ``(B, L_v)`` grid indices: ``(B, L, D)`` ->
        ``(B, P + L_v, D)``. Positions are added first, then the visible tokens gathered in one index op."""
        pos_embed = self.pos_embed if pos_embed is None else pos_embed
        if self.fixed_pos_embed:
            pos_embed = pos_embed.detach()
        p = self.num_prefix_tokens
        x = gather_tokens(x + pos_embed[:, p:], visible)  # (B, L_v, D)
        if self.cls_token is not None:
            cls = (self.cls_token + pos_embed[:, :p]).expand(x.shape[0], -1, -1)  # (B, 1, D)
            x = torch.cat([cls, x], dim=1)  # (B, 1 + L_v, D)
        return self.norm_pre(self.pos_drop(x))

    def forward_visible(
        self, x: torch.Tensor, visible: torch.Tensor, pos_embed: torch.Tensor | None = None
    ) -> torch.Tensor:
        """:meth:`forward` on the tokens at ``visible`` ``(B, L_v)`` only: ``(B, L, D)`` -> ``(B, P + L_v, D)``."""
        x = self.embed_visible(x, visible, pos_embed)
        x = run_blocks(self.blocks, x, checkpointing=self.grad_checkpointing and self.training)
        return self.norm(x)

    def set_token_merging(self, r: int | tuple[int, ...], prop_attn: bool = True) -> None:
        """Merge ``r`` tokens per block (an int or a per-block list; 0: off) with ToMe; prefix tokens never merge."""
        self.merging = merge_plan(r, len(self.blocks), prop_attn, self.num_prefix_tokens)
        self.token_sizes = None

    def forward(self, x: torch.Tensor, pos_embed: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, L, D)`` -> ``(B, P + L, D)``; with token merging ``(B, P + L', D)``, ``L' < L`` merged tokens in
        no grid order (their sizes in :attr:`token_sizes`)."""
        x = self.embed(x, pos_embed)
        checkpointing = self.grad_checkpointing and self.training
        if self.merging is None:
            x = run_blocks(self.blocks, x, checkpointing=checkpointing)
        else:
            x, self.token_sizes, _ = run_merging(self.blocks, x, self.merging, checkpointing=checkpointing)
        return self.norm(x)

    def forward_taps(
        self, x: torch.Tensor, pos_embed: torch.Tensor | None, take: set[int], *, stop_at: int | None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Normed final tokens and the raw outputs of the blocks in ``take`` (see ``collect_blocks``; merged
        tokens with token merging on)."""
        if self.merging is not None:
            x, self.token_sizes, kept = run_merging(
                self.blocks, self.embed(x, pos_embed), self.merging, take=take, stop_at=stop_at,
                checkpointing=self.grad_checkpointing and self.training,
            )  # fmt: skip
            return self.norm(x), kept
        x, kept = collect_blocks(
            self.blocks, self.embed(x, pos_embed), take, stop_at=stop_at,
            checkpointing=self.grad_checkpointing and self.training,
        )  # fmt: skip
        return self.norm(x), kept

    def pool(self, x: torch.Tensor, global_pool: str) -> torch.Tensor:
        """``(B, P + L, D)`` -> ``(B, D)`` by class token (``"token"``) or mean of the other tokens (``"avg"``; over
        the patches they stand for after token merging, as ToMe's MAE pooling)."""
        if global_pool == "token":
            return x[:, 0]
        p, sizes = self.num_prefix_tokens, self.token_sizes if self.merging is not None else None
        return weighted_mean(x[:, p:], None if sizes is None else sizes[:, p:])
