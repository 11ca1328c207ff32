"""ViViT Model 1: joint spatio-temporal attention. Every token attends to all ``T*h*w`` tokens."""

from __future__ import annotations

from typing import ClassVar

import torch
from einops import rearrange

from vitzoo.config import VideoConfig
from vitzoo.encoders.base import Grid, VideoEncoder, ViTInit, token_taps
from vitzoo.encoders.token_transformer import TokenTransformer
from vitzoo.flops import Flops, block_flops
from vitzoo.layers.pos_embed import resample_spacetime_pos_embed
from vitzoo.layers.visible import split_mask
from vitzoo.registry import ENCODERS


@ENCODERS.register("joint")
class JointEncoder(VideoEncoder):
    """A plain ViT over the flattened space-time sequence (``transformer.pos_embed`` is ``(1, P + T*h*w, D)``).

    With ``pos_embed="sincos"`` the table is VideoMAE's fixed sinusoid table; with ``class_token=False``,
    ``global_pool="avg"`` and ``fc_norm=True`` the encoder is VideoMAE's (see ``vitzoo.convert.from_hf``).
    """

    pre_norm = True  # its TokenTransformer trunk has norm_pre

    vit_init = ViTInit(trunk="transformer", pos_embed="tile")
    stack_modules = ("transformer",)
    merging_stack = "transformer"  # token merging over the whole space-time sequence
    merging_refusal = None
    pos_embed_types: ClassVar[tuple[str, ...]] = ("learned", "sincos")
    # VideoConfig fields of the other encoders, never read here (so a checkpoint differing in them still fits)
    unused_fields: ClassVar[tuple[str, ...]] = ("temporal_depth", "temporal_num_heads", "temporal_init")

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__(cfg)
        t, h, w = self.grid
        self.transformer = TokenTransformer(
            cfg,
            num_tokens=t * h * w,
            depth=cfg.depth,
            class_token=cfg.class_token,
            pos_drop=cfg.pos_drop_rate,
            final_norm=not cfg.use_fc_norm,
            pos_embed_type=cfg.pos_embed,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos_embed = self.tables(tuple(x.shape[1:4])).get("transformer.pos_embed")
        x = rearrange(x, "b t h w d -> b (t h w) d")  # (B, T*h*w, D)
        return self.transformer(x, pos_embed)  # (B, P + T*h*w, D)

    def forward_visible(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Token dropping (VideoMAE, MAE-ST): encode only the tokens ``mask`` ``(B, T*h*w)`` leaves visible
        (``True`` = masked), with their positions: ``(B, T, h, w, D)`` -> ``(B, P + L_v, D)``, grid order kept."""
        pos_embed = self.tables(tuple(x.shape[1:4])).get("transformer.pos_embed")
        x = rearrange(x, "b t h w d -> b (t h w) d")  # (B, T*h*w, D)
        visible, _ = split_mask(mask, x.shape[1])  # (B, L_v)
        return self.transformer.forward_visible(x, visible, pos_embed)  # (B, P + L_v, D)

    def resampled_tables(self, grid: Grid) -> dict[str, torch.Tensor]:
        tr = self.transformer
        pe = resample_spacetime_pos_embed(
            tr.pos_embed, old_shape=self.grid, new_shape=grid, num_prefix_tokens=tr.num_prefix_tokens
        )
        return {"transformer.pos_embed": pe}

    @property
    def num_taps(self) -> int:
        return len(self.transformer.blocks)

    def forward_taps(self, x: torch.Tensor, take: set[int], *, norm: bool, stop_at: int | None):
        grid = tuple(x.shape[1:4])
        pos_embed = self.tables(grid).get("transformer.pos_embed")
        tr = self.transformer
        final, kept = tr.forward_taps(rearrange(x, "b t h w d -> b (t h w) d"), pos_embed, take, stop_at=stop_at)
        tap_grid = None if tr.merging is not None else grid  # merged tokens form no grid
        return final, token_taps(kept, tap_grid, tr.num_prefix_tokens, tr.norm if norm else None)

    @property
    def token_sizes(self) -> torch.Tensor | None:
        return self.transformer.token_sizes if self.transformer.merging is not None else None

    @staticmethod
    def flops(cfg: VideoConfig) -> Flops:
        """One sequence of ``P + T*h*w`` tokens through ``depth`` blocks."""
        t, h, w = cfg.grid_thw
        length = t * h * w + int(cfg.class_token)
        return block_flops(cfg, tokens=length, groups=1, length=length).scaled(cfg.depth)
