"""ViViT Model 2: factorised encoder. A spatial ViT per time step, then a temporal transformer.

The spatial stage sees the ``N`` tokens of one tubelet slice (plus its class token) and summarises
them (class token, or mean with ``global_pool="avg"``); the temporal stage then encodes the ``T``
frame summaries with its own class token. VTN (Neimark et al., 2021) is this encoder with ``t = 1``
tubelets; see ``vitzoo/models/video_zoo.py``.
"""

from __future__ import annotations

import torch
from torch import nn

from vitzoo.config import VideoConfig, replace
from vitzoo.encoders.base import ViTInit
from vitzoo.encoders.per_frame import PerFrameEncoder
from vitzoo.encoders.token_transformer import TokenTransformer
from vitzoo.layers.pos_embed import resample_temporal_pos_embed
from vitzoo.registry import ENCODERS


@ENCODERS.register("fact_enc")
class FactorisedEncoder(PerFrameEncoder):
    """``spatial`` (a ViT trunk, depth ``cfg.depth``) then ``temporal`` (depth ``cfg.temporal_depth``)."""

    vit_init = ViTInit(trunk="spatial", zero=("temporal.pos_embed",))

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__(cfg)
        temporal_cfg = cfg if cfg.temporal_num_heads is None else replace(cfg, num_heads=cfg.temporal_num_heads)
        self.temporal = TokenTransformer(
            temporal_cfg, num_tokens=self.num_tubelets, depth=cfg.temporal_depth, class_token=cfg.class_token
        )

    def forward(self, x: torch.Tensor, *, return_tokens: bool = False):
        self.check_tokens(x)
        frames = self.forward_spatial(x)  # (B, T, D)
        x = self.temporal(frames)  # (B, P + T, D)
        pooled = self.temporal.pool(x, self.cfg.global_pool)  # (B, D)
        return (pooled, x) if return_tokens else pooled

    @torch.no_grad()
    def resample(self, *, num_tubelets: int, grid: int) -> None:
        super().resample(num_tubelets=num_tubelets, grid=grid)
        tp = self.temporal
        tp.pos_embed = nn.Parameter(
            resample_temporal_pos_embed(tp.pos_embed.data, new_len=num_tubelets, num_prefix_tokens=tp.num_prefix_tokens)
        )
