"""A ViT trunk applied to each time step on its own: the spatial stage shared by Model 2, VTN and frame averaging."""

from __future__ import annotations

import torch
from einops import rearrange

from vitzoo.config import VideoConfig
from vitzoo.encoders.base import Grid, VideoEncoder
from vitzoo.encoders.token_transformer import TokenTransformer
from vitzoo.flops import Flops, block_flops
from vitzoo.layers.pos_embed import resample_pos_embed


class PerFrameEncoder(VideoEncoder):
    """Holds ``spatial`` (a ViT trunk, depth ``cfg.depth``) and summarises every time step with it."""

    pre_norm = True  # its TokenTransformer trunk has norm_pre
    stack_modules = ("spatial",)
    merging_stack = "spatial"  # token merging within each frame; the frame summaries are not merged
    merging_refusal = None

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__(cfg)
        _, h, w = self.grid
        self.spatial = TokenTransformer(
            cfg, num_tokens=h * w, depth=cfg.depth, class_token=cfg.class_token, pos_drop=cfg.pos_drop_rate
        )

    def forward_spatial(self, x: torch.Tensor, tables: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Per-frame summaries (class token, or mean with ``global_pool="avg"``): ``(B, T, h, w, D)`` -> ``(B, T, D)``.

        ``tables`` are the position tables for ``x``'s grid (default: looked up).
        """
        t = x.shape[1]
        tables = self.tables(tuple(x.shape[1:4])) if tables is None else tables
        x = rearrange(x, "b t h w d -> (b t) (h w) d")  # (B*T, h*w, D)
        x = self.spatial(x, tables.get("spatial.pos_embed"))  # (B*T, P + h*w, D)
        x = self.spatial.pool(x, self.cfg.global_pool)  # (B*T, D)
        return rearrange(x, "(b t) d -> b t d", t=t)  # (B, T, D)

    def resampled_tables(self, grid: Grid) -> dict[str, torch.Tensor]:
        sp = self.spatial
        pe = resample_pos_embed(
            sp.pos_embed, old_grid=self.grid[1:], new_grid=tuple(grid[1:]), num_prefix_tokens=sp.num_prefix_tokens
        )
        return {"spatial.pos_embed": pe}

    def spatial_taps(self, x: torch.Tensor, take: set[int], *, norm: bool, stop_at: int | None):
        """Per-frame summaries ``(B, T, D)`` and the spatial blocks in ``take`` as ``(B, T, h, w, D)`` maps
        (prefix: the per-frame class tokens, ``(B, T*P, D)``)."""
        t, h, w = grid = tuple(x.shape[1:4])
        sp, p = self.spatial, self.spatial.num_prefix_tokens
        frames = rearrange(x, "b t h w d -> (b t) (h w) d")  # (B*T, h*w, D)
        final, kept = sp.forward_taps(frames, self.tables(grid).get("spatial.pos_embed"), take, stop_at=stop_at)
        taps = []
        for tokens in kept:  # (B*T, P + h*w, D)
            tokens = sp.norm(tokens) if norm else tokens
            if sp.merging is not None:  # merged tokens form no grid: the frames' tokens in a row
                grid_map = rearrange(tokens[:, p:], "(b t) l d -> b (t l) d", t=t)  # (B, T*L', D)
            else:
                grid_map = rearrange(tokens[:, p:], "(b t) (h w) d -> b t h w d", t=t, h=h, w=w)
            taps.append((grid_map, rearrange(tokens[:, :p], "(b t) p d -> b (t p) d", t=t) if p else None))
        summary = rearrange(sp.pool(final, self.cfg.global_pool), "(b t) d -> b t d", t=t)  # (B, T, D)
        return summary, taps

    @staticmethod
    def flops(cfg: VideoConfig) -> Flops:
        """A ViT on each of ``T`` frames: ``T`` sequences of ``P + h*w`` tokens."""
        t, h, w = cfg.grid_thw
        spatial_len = h * w + int(cfg.class_token)
        return block_flops(cfg, tokens=t * spatial_len, groups=t, length=spatial_len).scaled(cfg.depth)
