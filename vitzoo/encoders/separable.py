"""Shared trunk of ViViT Models 3 and 4: tokens stay ``(B, T, N, D)`` through every block.

Position is embedded separably: a spatial table ``pos_embed (1, N, D)`` (a class-token-free ViT's,
when initialised from one) plus a temporal table ``temporal_pos_embed (1, T, D)`` that starts at zero.
There is no class token; features are the global average of the final tokens.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from vitzoo.config import VideoConfig
from vitzoo.encoders.base import VideoEncoder
from vitzoo.layers import make_blocks, run_blocks
from vitzoo.layers.pos_embed import learned_embedding, resample_pos_embed, resample_temporal_pos_embed


class SeparableEncoder(VideoEncoder):
    """Blocks of ``block_cls`` over ``(B, T, N, D)`` with separable positions and average pooling."""

    block_cls: type[nn.Module]

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__(cfg)
        if cfg.class_token or cfg.global_pool != "avg":
            raise ValueError(
                f"{type(self).__name__} has no class token: build it with class_token=False, global_pool='avg'"
            )
        dim = cfg.embed_dim
        self.pos_embed = learned_embedding(1, self.num_patches, dim)
        self.temporal_pos_embed = nn.Parameter(torch.zeros(1, self.num_tubelets, dim))
        self.pos_drop = nn.Dropout(cfg.pos_drop_rate)
        self.blocks = make_blocks(cfg, block_cls=self.block_cls)
        self.norm = nn.LayerNorm(dim, eps=cfg.norm_eps)  # blocks initialise themselves (see Block)

    def forward(self, x: torch.Tensor, *, return_tokens: bool = False):
        self.check_tokens(x)
        x = x + self.pos_embed[:, None] + self.temporal_pos_embed[:, :, None]  # (B, T, N, D)
        x = self.pos_drop(x)
        x = run_blocks(self.blocks, x, checkpointing=self.grad_checkpointing and self.training)
        x = self.norm(x)  # (B, T, N, D)
        pooled = x.mean(dim=(1, 2))  # (B, D)
        return (pooled, rearrange(x, "b t n d -> b (t n) d")) if return_tokens else pooled

    @torch.no_grad()
    def resample(self, *, num_tubelets: int, grid: int) -> None:
        old_grid = int(round(self.num_patches**0.5))
        self.pos_embed = nn.Parameter(
            resample_pos_embed(self.pos_embed.data, old_grid=(old_grid,) * 2, new_grid=(grid,) * 2)
        )
        self.temporal_pos_embed = nn.Parameter(
            resample_temporal_pos_embed(self.temporal_pos_embed.data, new_len=num_tubelets)
        )
        self.num_tubelets, self.num_patches = num_tubelets, grid * grid
