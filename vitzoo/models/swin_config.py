"""The Video Swin Transformer's configuration: stage layout as data (widths, depths, heads, window)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from vitzoo import schema
from vitzoo.config import Activation, BaseConfig, StagedConfig
from vitzoo.layers.windows import ClippedWindowBias
from vitzoo.registry import CONFIGS

IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)


@CONFIGS.register("SwinConfig")
@dataclass
class SwinConfig(StagedConfig):
    """A Video Swin Transformer (Liu et al., 2022): tubelet stem, stages of (shifted) window attention, mean pool.

    Stage ``i`` has ``depths[i]`` blocks of width ``widths[i]`` with ``num_heads[i]`` heads; every stage after the
    first starts with a patch merging (2 x 2 tokens -> 1, widths[i-1] -> widths[i]). Blocks alternate plain and
    shifted windows of ``window_size`` ``(Wt, Wh, Ww)`` tokens. An image Swin is this with ``num_frames=1``,
    ``tubelet_size=1`` and ``window_size=(1, Wh, Ww)`` (it takes ``(B, C, 1, H, W)``). Any clip size works (it is
    padded to whole tubelets and windows, as torchvision does); ``dynamic_size`` allows sizes other than the
    configured one, and nothing is interpolated for them (the bias table depends only on the window).
    ``clipped_window_bias``: see :func:`vitzoo.layers.windows.relative_position_index`.
    """

    img_size: int | tuple[int, int] = 224
    num_frames: int = 32
    num_classes: int = 400
    mean: tuple[float, float, float] = IMAGENET_DEFAULT_MEAN
    std: tuple[float, float, float] = IMAGENET_DEFAULT_STD
    patch_size: int = 4
    tubelet_size: int = 2
    widths: tuple[int, ...] = (96, 192, 384, 768)
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: tuple[int, int, int] = (8, 7, 7)
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    patch_norm: bool = True  # LayerNorm after the tubelet embedding
    act: Activation = "gelu"
    norm_eps: float = 1e-5
    clipped_window_bias: ClippedWindowBias = "relative"
    attn_drop_rate: float = 0.0
    proj_drop_rate: float = 0.0  # after the stem, the attention projection and the MLP (torchvision's ``dropout``)
    drop_path_rate: float = 0.1  # stochastic depth, rising linearly over all blocks from 0

    @property
    def grid_thw(self) -> tuple[int, int, int]:
        """Token grid ``(T', h, w)`` after the stem at the configured size (partial tubelets padded)."""
        return token_grid(self, (self.num_frames, *self.img_hw))

    def validate(self) -> None:
        BaseConfig.validate(self)
        n = len(self.depths)
        if n < 1 or len(self.widths) != n or len(self.num_heads) != n:
            raise schema.ConfigError(
                f"depths={self.depths}, widths={self.widths}, num_heads={self.num_heads}: give one value per stage"
            )
        bad = [(w, h) for w, h in zip(self.widths, self.num_heads, strict=True) if h < 1 or w % h]
        if bad:
            raise schema.ConfigError(f"stage widths must be multiples of their heads; got (width, heads) {bad}")
        if min(self.depths) < 1 or min(self.window_size) < 1:
            raise schema.ConfigError(f"depths={self.depths} and window_size={self.window_size} must be >= 1")
        if min(self.num_frames, self.patch_size, self.tubelet_size) < 1:
            raise schema.ConfigError(
                f"num_frames={self.num_frames}, patch_size={self.patch_size}, tubelet_size={self.tubelet_size} "
                "must be >= 1"
            )


@CONFIGS.register("ImageSwinConfig")
@dataclass
class ImageSwinConfig(SwinConfig):
    """An image Swin Transformer (Liu et al., 2021): :class:`SwinConfig` with one frame, ``tubelet_size=1`` and a
    ``(1, Wh, Ww)`` window. Its model takes images ``(B, C, H, W)`` and speaks timm's Swin layouts (NHWC)."""

    img_size: int | tuple[int, int] = 224
    num_frames: int = 1
    num_classes: int = 1000
    tubelet_size: int = 1
    window_size: tuple[int, int, int] = (1, 7, 7)

    def validate(self) -> None:
        super().validate()
        if (self.num_frames, self.tubelet_size, self.window_size[0]) != (1, 1, 1):
            raise schema.ConfigError(
                f"an image Swin has num_frames=1, tubelet_size=1 and window_size=(1, h, w); got num_frames="
                f"{self.num_frames}, tubelet_size={self.tubelet_size}, window_size={self.window_size} "
                "(a video Swin is a SwinConfig, e.g. video_swin_tiny_4x2)"
            )


def token_grid(cfg: SwinConfig, size: tuple[int, int, int]) -> tuple[int, int, int]:
    """Token grid after the stem for a clip of ``size = (T, H, W)``."""
    t, h, w = size
    p = cfg.patch_size
    return math.ceil(t / cfg.tubelet_size), math.ceil(h / p), math.ceil(w / p)


def stage_grids(cfg: SwinConfig, size: tuple[int, int, int]) -> list[tuple[int, int, int]]:
    """The token grid of every stage for a clip of ``size``: patch merging halves ``H`` and ``W`` (rounding up)."""
    grids = [token_grid(cfg, size)]
    for _ in range(cfg.num_stages - 1):
        t, h, w = grids[-1]
        grids.append((t, math.ceil(h / 2), math.ceil(w / 2)))
    return grids
