"""Registered image ViTs. Names follow timm: ``vit_{size}_patch{p}_{img}``."""

from __future__ import annotations

from functools import partial

from vitzoo.config import ViTConfig
from vitzoo.models.sizes import SIZES
from vitzoo.registry import MODELS

# (size, patch, image size): the combinations timm and the ViT paper define, plus CPU-sized
# nano (unit tests) and micro (demo) models.
_STANDARD = [
    ("nano", 8, 32),
    ("micro", 4, 32),
    ("tiny", 16, 224), ("tiny", 16, 384),
    ("small", 16, 224), ("small", 32, 224), ("small", 16, 384),
    ("base", 8, 224), ("base", 16, 224), ("base", 32, 224), ("base", 16, 384),
    ("large", 16, 224), ("large", 32, 224), ("large", 16, 384),
    ("huge", 14, 224),
]  # fmt: skip


def _vit(size: str, patch: int, img: int, **extra) -> ViTConfig:
    return ViTConfig(patch_size=patch, img_size=img, **SIZES[size], **extra)


for _size, _patch, _img in _STANDARD:
    MODELS.add(f"vit_{_size}_patch{_patch}_{_img}", partial(_vit, _size, _patch, _img))

# Global-average-pooled ViT without class token (timm's ``*_gap_*``).
for _size in ("small", "base"):
    MODELS.add(
        f"vit_{_size}_patch16_gap_224",
        partial(_vit, _size, 16, 224, class_token=False, global_pool="avg", fc_norm=False),
    )
