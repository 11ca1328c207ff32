"""ViViT Model 1: joint spatio-temporal attention. Every token attends to all ``T*N`` tokens."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from vitzoo.config import VideoConfig
from vitzoo.encoders.base import VideoEncoder, ViTInit
from vitzoo.encoders.token_transformer import TokenTransformer
from vitzoo.layers.pos_embed import resample_spacetime_pos_embed
from vitzoo.registry import ENCODERS


@ENCODERS.register("joint")
class JointEncoder(VideoEncoder):
    """A plain ViT over the flattened space-time sequence (``transformer.pos_embed`` is ``(1, P + T*N, D)``)."""

    vit_init = ViTInit(trunk="transformer", pos_embed="tile")

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__(cfg)
        self.transformer = TokenTransformer(
            cfg,
            num_tokens=self.num_tubelets * self.num_patches,
            depth=cfg.depth,
            class_token=cfg.class_token,
            pos_drop=cfg.pos_drop_rate,
        )

    def forward(self, x: torch.Tensor, *, return_tokens: bool = False):
        self.check_tokens(x)
        x = rearrange(x, "b t n d -> b (t n) d")  # (B, T*N, D)
        x = self.transformer(x)  # (B, P + T*N, D)
        pooled = self.transformer.pool(x, self.cfg.global_pool)  # (B, D)
        return (pooled, x) if return_tokens else pooled

    @torch.no_grad()
    def resample(self, *, num_tubelets: int, grid: int) -> None:
        tr = self.transformer
        pe = resample_spacetime_pos_embed(
            tr.pos_embed.data,
            old_shape=(self.num_tubelets, int(round(self.num_patches**0.5))),
            new_shape=(num_tubelets, grid),
            num_prefix_tokens=tr.num_prefix_tokens,
        )
        tr.pos_embed = nn.Parameter(pe)
        self.num_tubelets, self.num_patches = num_tubelets, grid * grid
