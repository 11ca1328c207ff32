"""The light decoder of a masked autoencoder (MAE, VideoMAE): visible tokens + mask tokens -> pixels of patches.

The encoder's visible tokens are projected to the decoder's width (``encoder_to_decoder``, no bias), each given
the fixed sin-cos position of its grid cell; every token the decoder must reconstruct is the learned
``mask_token`` plus its cell's position. Pre-norm transformer blocks (vitzoo's :class:`~vitzoo.layers.Block`)
run over both, then the reconstructed tokens are normalised and projected to the pixels of their patch (``head``).
Parameter names follow the layout transformers' ``VideoMAEForPreTraining`` uses, renamed to vitzoo's blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vitzoo.config import TransformerConfig
from vitzoo.layers import make_blocks, run_blocks
from vitzoo.layers.init import init_vit_weights
from vitzoo.layers.pos_embed import sincos_table
from vitzoo.layers.visible import gather_tokens


@dataclass
class DecoderConfig:
    """The decoder's shape; VideoMAE's defaults for ViT-B are width 384, depth 4, 6 heads, MLP ratio 4."""

    encoder_dim: int
    patch_pixels: int  # values per reconstructed patch: C * tubelet * patch * patch
    num_tokens: int  # L: grid tokens the fixed position table covers
    dim: int = 384
    depth: int = 4
    num_heads: int = 6
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    act: str = "gelu"
    norm_eps: float = 1e-6  # the blocks' LayerNorms
    final_norm_eps: float = 1e-6  # the norm before the head (transformers' VideoMAE: 1e-5)

    def transformer(self) -> TransformerConfig:
        """The block stack's config."""
        return TransformerConfig(
            embed_dim=self.dim, depth=self.depth, num_heads=self.num_heads, mlp_ratio=self.mlp_ratio,
            qkv_bias=self.qkv_bias, act=self.act, norm_eps=self.norm_eps,
        )  # fmt: skip


class MAEDecoder(nn.Module):
    """``(B, L_v, D_enc)`` visible tokens -> ``(B, L_d, patch_pixels)`` predictions for the decoded cells."""

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        block_cfg = cfg.transformer()
        block_cfg.validate()
        self.cfg = cfg
        self.encoder_to_decoder = nn.Linear(cfg.encoder_dim, cfg.dim, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.blocks = make_blocks(block_cfg)
        self.norm = nn.LayerNorm(cfg.dim, eps=cfg.final_norm_eps)
        self.head = nn.Linear(cfg.dim, cfg.patch_pixels)
        self.apply(init_vit_weights)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        # the fixed table (never trained, not saved): recomputed for another grid size
        self.register_buffer("pos_embed", sincos_table(cfg.num_tokens, cfg.dim), persistent=False)
        self.grad_checkpointing = False

    def position_table(self, num_tokens: int) -> torch.Tensor:
        """The fixed sin-cos table ``(1, L, dim)`` for ``L`` grid tokens."""
        if num_tokens == self.pos_embed.shape[1]:
            return self.pos_embed
        return sincos_table(num_tokens, self.cfg.dim).to(self.pos_embed.device)

    def forward(
        self, tokens: torch.Tensor, visible: torch.Tensor, decoded: torch.Tensor, num_tokens: int
    ) -> torch.Tensor:
        """Encoder tokens at the ``visible`` grid cells ``(B, L_v)`` -> pixels of the ``decoded`` cells ``(B, L_d)``.

        Returns ``(B, L_d, patch_pixels)`` in the order of ``decoded``.
        """
        x = self.encoder_to_decoder(tokens)  # (B, L_v, d)
        table = self.position_table(num_tokens).to(x.dtype)  # (1, L, d)
        queries = self.mask_token.to(x.dtype) + gather_tokens(table, decoded)  # (B, L_d, d)
        x = torch.cat([x + gather_tokens(table, visible), queries], dim=1)  # (B, L_v + L_d, d)
        x = run_blocks(self.blocks, x, checkpointing=self.grad_checkpointing and self.training)
        x = self.norm(x[:, -decoded.shape[1] :]) if decoded.shape[1] else x[:, :0]  # (B, L_d, d)
        return self.head(x)  # (B, L_d, patch_pixels)
