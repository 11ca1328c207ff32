"""Registered TimeSformer models (Bertasius et al., 2021): ``timesformer_{size}_patch{p}_{img}``.

Divided space-time attention (``encoder="divided"``), 1-frame tubelets (a per-frame patch embedding),
class-token pooling. ``base`` is the paper's TimeSformer: ViT-B/16 width, 8 frames at 224 px. ``nano``
(4 frames at 32 px) is for CPU tests. ``temporal_init="copy"`` follows TimeSformer's ViT initialisation:
the temporal attention starts as a copy of the spatial one, behind a zero ``temporal_fc``.
"""

from __future__ import annotations

from functools import partial

from vitzoo.config import VideoConfig
from vitzoo.models.sizes import SIZES
from vitzoo.registry import MODELS

# Size -> (patch, frames, image size).
TIMESFORMER_GEOMETRY = {
    "nano": (8, 4, 32),
    "base": (16, 8, 224),
}


def _timesformer(size: str, *, patch_size: int, num_frames: int, img_size: int) -> VideoConfig:
    return VideoConfig(
        encoder="divided",
        **SIZES[size],
        patch_size=patch_size,
        num_frames=num_frames,
        img_size=img_size,
        tubelet_size=1,
        class_token=True,
        global_pool="token",
        temporal_init="copy",
    )


for _size, (_p, _frames, _img) in TIMESFORMER_GEOMETRY.items():
    MODELS.add(
        f"timesformer_{_size}_patch{_p}_{_img}",
        partial(_timesformer, _size, patch_size=_p, num_frames=_frames, img_size=_img),
    )
