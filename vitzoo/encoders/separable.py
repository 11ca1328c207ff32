"""Shared trunk of ViViT Models 3 and 4: tokens stay ``(B, T, h*w, D)`` through every block.

Position is embedded separably: a spatial table ``pos_embed (1, h*w, D)`` (a class-token-free ViT's,
when initialised from one) plus a temporal table ``temporal_pos_embed (1, T, D)`` that starts at zero.
There is no class token; the model pools the final tokens by their mean. With token merging each block merges
the same positions in every frame (see :mod:`vitzoo.encoders.grid_merging`): tokens ``(B, T, N', D)``.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from vitzoo.config import VideoConfig
from vitzoo.encoders.base import Grid, token_taps
from vitzoo.encoders.grid_merging import GridMergingEncoder
from vitzoo.layers import make_blocks, run_blocks
from vitzoo.layers.block import collect_blocks
from vitzoo.layers.pos_embed import learned_embedding, resample_pos_embed, resample_temporal_pos_embed


class SeparableEncoder(GridMergingEncoder):
    """Blocks of ``block_cls`` over ``(B, T, h*w, D)`` with separable positions and average pooling."""

    block_cls: type[nn.Module]

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__(cfg)
        if cfg.class_token or cfg.global_pool != "avg":
            raise ValueError(
                f"{type(self).__name__} has no class token: build it with class_token=False, global_pool='avg'"
            )
        dim = cfg.embed_dim
        t, h, w = self.grid
        self.pos_embed = learned_embedding(1, h * w, dim)
        self.temporal_pos_embed = nn.Parameter(torch.zeros(1, t, dim))
        self.pos_drop = nn.Dropout(cfg.pos_drop_rate)
        self.blocks = make_blocks(cfg, block_cls=self.block_cls)
        self.norm = nn.Identity() if cfg.use_fc_norm else nn.LayerNorm(dim, eps=cfg.norm_eps)  # blocks init themselves

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Token grid ``(B, T, h, w, D)`` -> positioned tokens ``(B, T, h*w, D)``."""
        tables = self.tables(tuple(x.shape[1:4]))
        x = rearrange(x, "b t h w d -> b t (h w) d")  # (B, T, N, D)
        pos_embed = tables.get("pos_embed", self.pos_embed)  # (1, N, D)
        temporal_pos_embed = tables.get("temporal_pos_embed", self.temporal_pos_embed)  # (1, T, D)
        x = x + pos_embed[:, None] + temporal_pos_embed[:, :, None]
        return self.pos_drop(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Token grid ``(B, T, h, w, D)`` -> ``(B, T*h*w, D)``; with token merging ``(B, T*N', D)``: the same
        ``N' < h*w`` merged positions in every frame, time-major, each standing for :attr:`token_sizes` tubelets
        (no longer a spatial grid)."""
        x = self.embed(x)  # (B, T, N, D)
        if self.merge_plan is not None:
            x, _ = self.merge_blocks(x, x.shape[1])  # (B, T, N', D)
            return rearrange(self.norm(x), "b t n d -> b (t n) d")  # (B, T*N', D)
        x = run_blocks(self.blocks, x, checkpointing=self.grad_checkpointing and self.training)
        return rearrange(self.norm(x), "b t n d -> b (t n) d")  # (B, T*N, D)

    def resampled_tables(self, grid: Grid) -> dict[str, torch.Tensor]:
        return {
            "pos_embed": resample_pos_embed(self.pos_embed, old_grid=self.grid[1:], new_grid=tuple(grid[1:])),
            "temporal_pos_embed": resample_temporal_pos_embed(self.temporal_pos_embed, new_len=grid[0]),
        }

    @property
    def num_taps(self) -> int:
        return len(self.blocks)

    def forward_taps(self, x: torch.Tensor, take: set[int], *, norm: bool, stop_at: int | None):
        grid = tuple(x.shape[1:4])
        if self.merge_plan is not None:  # merged tokens form no grid: each tap is (B, T*N_i, D)
            final, kept = self.merge_blocks(self.embed(x), grid[0], take=take, stop_at=stop_at)  # (B, T, N_i, D)
            flat = [rearrange(k, "b t n d -> b (t n) d") for k in kept]
            return rearrange(self.norm(final), "b t n d -> b (t n) d"), token_taps(
                flat, None, 0, self.norm if norm else None
            )
        final, kept = collect_blocks(
            self.blocks, self.embed(x), take, stop_at=stop_at, checkpointing=self.grad_checkpointing and self.training
        )  # (B, T, N, D) each
        flat = [rearrange(k, "b t n d -> b (t n) d") for k in kept]
        taps = token_taps(flat, grid, 0, self.norm if norm else None)
        return rearrange(self.norm(final), "b t n d -> b (t n) d"), taps
