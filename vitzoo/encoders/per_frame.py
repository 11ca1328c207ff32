"""A ViT trunk applied to each time step on its own: the spatial stage shared by Model 2, VTN and frame averaging."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from vitzoo.config import VideoConfig
from vitzoo.encoders.base import VideoEncoder
from vitzoo.encoders.token_transformer import TokenTransformer
from vitzoo.layers.pos_embed import resample_pos_embed


class PerFrameEncoder(VideoEncoder):
    """Holds ``spatial`` (a ViT trunk, depth ``cfg.depth``) and summarises every time step with it."""

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__(cfg)
        self.spatial = TokenTransformer(
            cfg,
            num_tokens=self.num_patches,
            depth=cfg.depth,
            class_token=cfg.class_token,
            pos_drop=cfg.pos_drop_rate,
        )

    def forward_spatial(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame summaries (class token, or mean with ``global_pool="avg"``): ``(B, T, N, D)`` -> ``(B, T, D)``."""
        b = x.shape[0]
        x = rearrange(x, "b t n d -> (b t) n d")  # (B*T, N, D)
        x = self.spatial(x)  # (B*T, P + N, D)
        x = self.spatial.pool(x, self.cfg.global_pool)  # (B*T, D)
        return rearrange(x, "(b t) d -> b t d", b=b)  # (B, T, D)

    @torch.no_grad()
    def resample(self, *, num_tubelets: int, grid: int) -> None:
        old_grid = int(round(self.num_patches**0.5))
        sp = self.spatial
        sp.pos_embed = nn.Parameter(
            resample_pos_embed(
                sp.pos_embed.data,
                old_grid=(old_grid,) * 2,
                new_grid=(grid,) * 2,
                num_prefix_tokens=sp.num_prefix_tokens,
            )
        )
        self.num_tubelets, self.num_patches = num_tubelets, grid * grid
