"""Pre-norm transformer block: ``x + DropPath(LS(Attn(LN(x))))``, then the same with the MLP."""

from __future__ import annotations

import torch
import torch.utils.checkpoint
from timm.layers import DropPath, LayerScale
from torch import nn

from vitzoo.config import TransformerConfig
from vitzoo.layers.attention import Attention
from vitzoo.layers.init import init_vit_weights
from vitzoo.layers.mlp import Mlp
from vitzoo.layers.token_merging import Merging, bipartite_soft_matching, merge_wavg, proportional_attention_mask


def layer_scale(dim: int, init_values: float | None) -> nn.Module:
    """timm's ``LayerScale`` (parameter ``gamma``) or identity when ``init_values`` is None."""
    return LayerScale(dim, init_values=init_values) if init_values is not None else nn.Identity()


def drop_path(rate: float) -> nn.Module:
    """Stochastic depth; timm's ``DropPath`` is a no-op in eval mode."""
    return DropPath(rate) if rate > 0 else nn.Identity()


class Block(nn.Module):
    """A ViT block with timm's key names (``norm1, attn, ls1, norm2, mlp, ls2``)."""

    def __init__(self, cfg: TransformerConfig, *, drop_path_rate: float = 0.0, attn: Attention | None = None):
        super().__init__()
        dim = cfg.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=cfg.norm_eps)
        self.attn = attn if attn is not None else make_attention(cfg)
        self.ls1 = layer_scale(dim, cfg.init_values)
        self.drop_path1 = drop_path(drop_path_rate)
        self.norm2 = nn.LayerNorm(dim, eps=cfg.norm_eps)
        self.mlp = Mlp(dim=dim, hidden_dim=int(dim * cfg.mlp_ratio), act=cfg.act, drop=cfg.proj_drop_rate)
        self.ls2 = layer_scale(dim, cfg.init_values)
        self.drop_path2 = drop_path(drop_path_rate)
        self.apply(init_vit_weights)  # subclasses adding parts initialise them after this

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x), attn_mask)))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))

    def forward_merging(
        self, x: torch.Tensor, size: torch.Tensor | None, r: int, merging: Merging
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The block with token merging (ToMe) between attention and MLP: ``(B, L, D)`` -> ``(B, L - r, D)``.

        ``size (B, L, 1)`` counts the input patches each token stands for (None: all 1); with
        ``merging.prop_attn`` its log is added to the attention logits. Returns the tokens and their new sizes.
        """
        q, k, v = self.attn.project_qkv(self.norm1(x))  # (B, H, L, d) each
        mask = proportional_attention_mask(size, q.dtype) if merging.prop_attn else None
        x = x + self.drop_path1(self.ls1(self.attn.project_out(self.attn.attend(q, k, v, mask))))
        merge = bipartite_soft_matching(k.mean(dim=1), r, merging.num_prefix_tokens) if r > 0 else None
        if merge is not None:
            x, size = merge_wavg(merge, x, size)  # (B, L - r, D), (B, L - r, 1)
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x)))), size


def make_attention(cfg: TransformerConfig, cls: type[Attention] = Attention) -> Attention:
    """An attention layer of class ``cls`` configured from ``cfg``."""
    return cls(
        dim=cfg.embed_dim,
        num_heads=cfg.num_heads,
        qkv_bias=cfg.qkv_bias,
        qk_norm=cfg.qk_norm,
        attn_drop=cfg.attn_drop_rate,
        proj_drop=cfg.proj_drop_rate,
        norm_eps=cfg.norm_eps,
    )


def drop_path_rates(total: float, depth: int) -> list[float]:
    """Linearly increasing stochastic-depth rates over ``depth`` blocks (0 for the first)."""
    return [total * i / max(depth - 1, 1) for i in range(depth)]


def make_blocks(cfg: TransformerConfig, depth: int | None = None, block_cls: type[nn.Module] = Block) -> nn.Sequential:
    """``depth`` (default ``cfg.depth``) blocks of ``block_cls`` with the stochastic-depth schedule."""
    depth = cfg.depth if depth is None else depth
    return nn.Sequential(*(block_cls(cfg, drop_path_rate=r) for r in drop_path_rates(cfg.drop_path_rate, depth)))


def collect_blocks(
    blocks: nn.Sequential,
    x: torch.Tensor,
    take: set[int],
    *args,
    stop_at: int | None = None,
    checkpointing: bool = False,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Apply ``blocks`` (each called as ``blk(x, *args)``), keeping the outputs of the blocks in ``take``.

    Stops after block ``stop_at`` when given. With ``checkpointing`` (and grad enabled) every block is
    recomputed in backward, as :func:`run_blocks` does. Returns the last output and the kept ones in block order.
    """
    checkpointing = checkpointing and torch.is_grad_enabled()
    kept = []
    for i, blk in enumerate(blocks):
        x = torch.utils.checkpoint.checkpoint(blk, x, *args, use_reentrant=False) if checkpointing else blk(x, *args)
        if i in take:
            kept.append(x)
        if i == stop_at:
            break
    return x, kept


def run_blocks(blocks: nn.Sequential, x: torch.Tensor, *, checkpointing: bool = False) -> torch.Tensor:
    """Apply ``blocks`` in order; with ``checkpointing`` (and grad enabled) recompute activations in backward."""
    if checkpointing and torch.is_grad_enabled():
        for blk in blocks:
            x = torch.utils.checkpoint.checkpoint(blk, x, use_reentrant=False)
        return x
    return blocks(x)
