"""ViViT Model 2: factorised encoder. A spatial ViT per time step, then a temporal transformer.

The spatial stage sees the ``h*w`` tokens of one tubelet slice (plus its class token) and summarises
them (class token, or mean with ``global_pool="avg"``); the temporal stage then encodes the ``T``
frame summaries with its own class token. VTN (Neimark et al., 2021) is this encoder with ``t = 1``
tubelets; see ``vitzoo/models/video_zoo.py``. The final tokens are the temporal stage's, ``(B, P + T, D)``
(a ``(T, 1, 1)`` grid); :meth:`forward_taps` counts the spatial blocks first, then the temporal ones.
"""

from __future__ import annotations

import torch
from einops import rearrange

from vitzoo.config import VideoConfig, replace
from vitzoo.encoders.base import Grid, ViTInit, token_taps
from vitzoo.encoders.per_frame import PerFrameEncoder
from vitzoo.encoders.token_transformer import TokenTransformer
from vitzoo.flops import Flops, block_flops
from vitzoo.layers.pos_embed import resample_temporal_pos_embed
from vitzoo.layers.visible import split_mask
from vitzoo.registry import ENCODERS


@ENCODERS.register("fact_enc")
class FactorisedEncoder(PerFrameEncoder):
    """``spatial`` (a ViT trunk, depth ``cfg.depth``) then ``temporal`` (depth ``cfg.temporal_depth``)."""

    vit_init = ViTInit(trunk="spatial", zero=("temporal.pos_embed",))
    stack_modules = ("spatial", "temporal")

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__(cfg)
        temporal_cfg = cfg if cfg.temporal_num_heads is None else replace(cfg, num_heads=cfg.temporal_num_heads)
        self.temporal = TokenTransformer(
            temporal_cfg,
            num_tokens=self.grid[0],
            depth=cfg.temporal_depth,
            class_token=cfg.class_token,
            final_norm=not cfg.use_fc_norm,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tables = self.tables(tuple(x.shape[1:4]))
        frames = self.forward_spatial(x, tables)  # (B, T, D)
        return self.temporal(frames, tables.get("temporal.pos_embed"))  # (B, P + T, D)

    def forward_visible(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Token dropping under tube masking (the same positions masked in every time slice): the spatial stage runs
        per frame on the kept positions only, the temporal stage as usual: ``(B, T, h, w, D)`` -> ``(B, P + T, D)``."""
        t, h, w = grid = tuple(x.shape[1:4])
        split_mask(mask, t * h * w)  # shape and equal counts
        per_slice = mask.reshape(mask.shape[0], t, h * w)  # (B, T, h*w)
        if not torch.equal(per_slice, per_slice[:, :1].expand_as(per_slice)):
            raise ValueError(
                "the factorised encoder drops tokens only under tube masking (the same positions in every time "
                "slice; vitzoo.data.masking.TubeMask); use encoder='joint' for other masks"
            )
        tables = self.tables(grid)
        visible, _ = split_mask(per_slice[:, 0], h * w)  # (B, hw_v): the positions kept in every slice
        visible = visible.repeat_interleave(t, dim=0)  # (B*T, hw_v), frames sample-major as below
        frames = rearrange(x, "b t h w d -> (b t) (h w) d")  # (B*T, h*w, D)
        frames = self.spatial.forward_visible(frames, visible, tables.get("spatial.pos_embed"))  # (B*T, P + hw_v, D)
        frames = rearrange(self.spatial.pool(frames, self.cfg.global_pool), "(b t) d -> b t d", t=t)  # (B, T, D)
        return self.temporal(frames, tables.get("temporal.pos_embed"))  # (B, P + T, D)

    def resampled_tables(self, grid: Grid) -> dict[str, torch.Tensor]:
        tp = self.temporal
        pe = resample_temporal_pos_embed(tp.pos_embed, new_len=grid[0], num_prefix_tokens=tp.num_prefix_tokens)
        return {**super().resampled_tables(grid), "temporal.pos_embed": pe}

    @property
    def num_taps(self) -> int:
        return len(self.spatial.blocks) + len(self.temporal.blocks)

    def feature_info(self, prefix: str = "") -> list[dict]:
        """The spatial blocks' taps are per-frame maps ``(T', h, w)``; the temporal blocks' are time-only maps
        ``(T', 1, 1)`` (one cell covers the whole frame: ``reduction`` is the frame height)."""
        info = super().feature_info(prefix)
        for tap in info[len(self.spatial.blocks) :]:
            tap.update(reduction=self.cfg.img_hw[0], axes="t")
        return info

    def forward_taps(self, x: torch.Tensor, take: set[int], *, norm: bool, stop_at: int | None):
        t = x.shape[1]
        depth = len(self.spatial.blocks)
        frames, taps = self.spatial_taps(x, take, norm=norm, stop_at=stop_at)  # (B, T, D)
        if stop_at is not None and stop_at < depth:
            return frames, taps
        tp = self.temporal
        pos_embed = self.tables(tuple(x.shape[1:4])).get("temporal.pos_embed")
        later = {i - depth for i in take if i >= depth}
        final, kept = tp.forward_taps(frames, pos_embed, later, stop_at=None if stop_at is None else stop_at - depth)
        return final, taps + token_taps(kept, (t, 1, 1), tp.num_prefix_tokens, tp.norm if norm else None)

    @staticmethod
    def flops(cfg: VideoConfig) -> Flops:
        """``T`` spatial sequences of ``P + h*w`` tokens, then one temporal sequence of ``P + T``."""
        t, p = cfg.num_tubelets, int(cfg.class_token)
        temporal_cfg = cfg if cfg.temporal_num_heads is None else replace(cfg, num_heads=cfg.temporal_num_heads)
        temporal = block_flops(temporal_cfg, tokens=t + p, groups=1, length=t + p).scaled(cfg.temporal_depth)
        return PerFrameEncoder.flops(cfg) + temporal
