"""ViViT Model 3: factorised self-attention. Each block attends within a frame, then across time.

Block: ``x += SpatialAttn(LN(x))`` over the ``N`` tokens of each time step, ``x += TemporalAttn(LN(x))``
over the ``T`` tokens at each spatial location, ``x += MLP(LN(x))``. The spatial attention, its norm
and the MLP carry a ViT block's names (``norm1, attn, norm2, mlp``), so image weights load as is; the
temporal branch (``temporal_norm, temporal_attn``) is new. ``cfg.temporal_init`` decides how it starts:
``"zero"`` zeroes its output projection (the block then equals the ViT block on every frame), ``"copy"``
copies the spatial attention and norm.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from vitzoo.config import VideoConfig
from vitzoo.encoders.base import ViTInit
from vitzoo.encoders.separable import SeparableEncoder
from vitzoo.encoders.temporal_block import TemporalBranchBlock
from vitzoo.flops import Flops, attention_only_flops, block_flops
from vitzoo.layers.token_merging import Merging, frame_attention_mask, frame_shared_matching
from vitzoo.registry import ENCODERS


class FactorisedSelfAttentionBlock(TemporalBranchBlock):
    """A ViT block with a temporal self-attention branch between the spatial attention and the MLP."""

    def __init__(self, cfg: VideoConfig, *, drop_path_rate: float = 0.0) -> None:
        super().__init__(cfg, drop_path_rate=drop_path_rate)
        self.init_temporal()

    @torch.no_grad()
    def init_temporal(self) -> None:
        """Apply ``temporal_init``: zero the temporal output projection, or copy the spatial branch."""
        if self.temporal_init == "zero":
            nn.init.zeros_(self.temporal_attn.proj.weight)
            nn.init.zeros_(self.temporal_attn.proj.bias)
        else:
            self.copy_spatial_to_temporal()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One name for the residual stream: each regrouped copy frees the one before (inference peak memory).
        t, n = x.shape[1:3]
        x = rearrange(x, "b t n d -> (b t) n d")  # (B*T, N, D): attend within each time step
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x))))
        x = rearrange(x, "(b t) n d -> (b n) t d", t=t).contiguous()  # (B*N, T, D): attend across time
        x = x + self.temporal_drop_path(self.temporal_ls(self.temporal_attn(self.temporal_norm(x))))
        x = rearrange(x, "(b n) t d -> b t n d", n=n).contiguous()  # (B, T, N, D)
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))

    def forward_merging(
        self, x: torch.Tensor, size: torch.Tensor | None, r: int, merging: Merging
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The block with token merging between the temporal attention and the MLP: ``(B, T, N, D)`` ->
        ``(B, T, N - r, D)``, the same ``r`` positions merged in every frame (matched on the spatial keys).

        ``size (B, N, 1)``: tubelets per position, shared by all frames (None: all 1); with ``merging.prop_attn``
        its log is added to the spatial attention's logits (the temporal one needs none: one size per location).
        """
        t, n = x.shape[1:3]
        x = rearrange(x, "b t n d -> (b t) n d")  # (B*T, N, D): attend within each time step
        q, k, v = self.attn.project_qkv(self.norm1(x))  # (B*T, H, N, d) each
        mask = frame_attention_mask(size, t, q.dtype) if merging.prop_attn else None  # (B*T, 1, 1, N)
        x = x + self.drop_path1(self.ls1(self.attn.project_out(self.attn.attend(q, k, v, mask))))
        x = rearrange(x, "(b t) n d -> (b n) t d", t=t).contiguous()  # (B*N, T, D): attend across time
        x = x + self.temporal_drop_path(self.temporal_ls(self.temporal_attn(self.temporal_norm(x))))
        x = rearrange(x, "(b n) t d -> b t n d", n=n).contiguous()  # (B, T, N, D)
        keys = rearrange(k.mean(dim=1), "(b t) n d -> b t n d", t=t)  # (B, T, N, d): averaged over heads
        merge = frame_shared_matching(keys, r, merging.num_prefix_tokens) if r > 0 else None
        if merge is not None:
            x, size = merge(x, size)  # (B, T, N - r, D), (B, N - r, 1)
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x)))), size


@ENCODERS.register("fact_sa")
class FactorisedSelfAttentionEncoder(SeparableEncoder):
    """ViViT Model 3 (see module docstring)."""

    vit_init = ViTInit(
        zero=("temporal_pos_embed",),
        temporal_copy={"temporal_attn": "attn", "temporal_norm": "norm1"},
        temporal_zero=("temporal_attn.proj",),
    )

    block_cls = FactorisedSelfAttentionBlock

    @staticmethod
    def flops(cfg: VideoConfig) -> Flops:
        """Per block: attention within each of ``T`` frames and the MLP, then attention within each location."""
        t, h, w = cfg.grid_thw
        n = h * w
        block = block_flops(cfg, tokens=t * n, groups=t, length=n) + attention_only_flops(cfg, groups=n, length=t)
        return block.scaled(cfg.depth)
