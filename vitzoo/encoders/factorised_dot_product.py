"""ViViT Model 4: factorised dot-product attention.

In every block, the first half of the heads attends over space (the ``N`` tokens of the same time
step) and the second half over time (the ``T`` tokens at the same location); the head outputs are
concatenated and projected as usual. The parameters are exactly a ViT block's, so image weights are
reused directly with no new parts.
"""

from __future__ import annotations

import dataclasses

import torch
from einops import rearrange

from vitzoo.config import VideoConfig
from vitzoo.encoders.base import ViTInit
from vitzoo.encoders.separable import SeparableEncoder
from vitzoo.flops import Flops, attention_flops, block_flops
from vitzoo.layers import Attention, Block
from vitzoo.layers.block import make_attention
from vitzoo.layers.token_merging import Merging, frame_attention_mask, frame_shared_matching
from vitzoo.registry import ENCODERS


class FactorisedDotProductAttention(Attention):
    """Self-attention on ``(B, T, N, D)`` whose heads are split between space and time."""

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attn_mask is not None:
            raise ValueError("FactorisedDotProductAttention builds its own space/time grouping; no mask")
        return self.forward_factorised(x)[0]

    def forward_factorised(
        self, x: torch.Tensor, space_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, N, D)`` -> the output ``(B, T, N, D)`` and the spatial heads' keys ``(B, T, H/2, N, d)``.

        ``space_mask`` (additive, ``(B*T, 1, 1, N)``) goes to the spatial heads only (token merging's log sizes;
        the temporal heads need none: the ``T`` keys at one location share one size)."""
        t, n = x.shape[1:3]
        half = self.num_heads // 2
        q, k, v = self.project_qkv(x)  # (B, T, H, N, d) each
        to_space = lambda z: rearrange(z[:, :, :half], "b t h n d -> (b t) h n d")  # noqa: E731
        to_time = lambda z: rearrange(z[:, :, half:], "b t h n d -> (b n) h t d")  # noqa: E731
        space_mask = None if space_mask is None else space_mask.to(q.dtype)
        space = self.attend(to_space(q), to_space(k), to_space(v), space_mask)  # (B*T, H/2, N, d)
        time = self.attend(to_time(q), to_time(k), to_time(v))  # (B*N, H/2, T, d)
        space = rearrange(space, "(b t) h n d -> b t n h d", t=t)
        time = rearrange(time, "(b n) h t d -> b t n h d", n=n)
        out = torch.cat([space, time], dim=3)  # (B, T, N, H, d): the only copy; merging (h d) below is a view
        out = self.proj_drop(self.proj(rearrange(out, "b t n h d -> b t n (h d)")))  # (B, T, N, D)
        return out, k[:, :, :half]


class FactorisedDotProductBlock(Block):
    """A ViT block whose attention is :class:`FactorisedDotProductAttention`."""

    def __init__(self, cfg: VideoConfig, *, drop_path_rate: float = 0.0) -> None:
        if cfg.num_heads % 2:
            raise ValueError(f"factorised dot-product attention needs an even num_heads, got {cfg.num_heads}")
        super().__init__(cfg, drop_path_rate=drop_path_rate, attn=make_attention(cfg, FactorisedDotProductAttention))

    def forward_merging(
        self, x: torch.Tensor, size: torch.Tensor | None, r: int, merging: Merging
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The block with token merging between attention and MLP: ``(B, T, N, D)`` -> ``(B, T, N - r, D)``, the
        same ``r`` positions merged in every frame, matched on the spatial heads' keys.

        ``size (B, N, 1)``: tubelets per position, shared by all frames (None: all 1); with ``merging.prop_attn``
        its log is added to the spatial heads' logits only.
        """
        t = x.shape[1]
        mask = frame_attention_mask(size, t, x.dtype) if merging.prop_attn else None  # (B*T, 1, 1, N)
        out, keys = self.attn.forward_factorised(self.norm1(x), mask)  # (B, T, N, D), (B, T, H/2, N, d)
        x = x + self.drop_path1(self.ls1(out))
        merge = frame_shared_matching(keys.mean(dim=2), r, merging.num_prefix_tokens) if r > 0 else None
        if merge is not None:
            x, size = merge(x, size)  # (B, T, N - r, D), (B, N - r, 1)
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x)))), size


@ENCODERS.register("fact_dot")
class FactorisedDotProductEncoder(SeparableEncoder):
    """ViViT Model 4 (see module docstring)."""

    vit_init = ViTInit(zero=("temporal_pos_embed",))

    block_cls = FactorisedDotProductBlock

    @staticmethod
    def flops(cfg: VideoConfig) -> Flops:
        """A ViT block on all ``T*h*w`` tokens whose attention is half in space (``D/2`` wide), half in time."""
        t, h, w = cfg.grid_thw
        n, d = h * w, cfg.embed_dim
        attention = attention_flops(groups=t, length=n, dim=d // 2) + attention_flops(groups=n, length=t, dim=d // 2)
        block = dataclasses.replace(block_flops(cfg, tokens=t * n, groups=1, length=t * n), attention=attention)
        return block.scaled(cfg.depth)
