"""Registered image ViTs. Names follow timm: ``vit_{size}_patch{p}_{img}``."""

from __future__ import annotations

from functools import partial

from torch import nn

from vitzoo.config import ViTConfig
from vitzoo.models.reference import Reference, require
from vitzoo.models.sizes import SIZES
from vitzoo.registry import MODELS, REFERENCES

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


def build_timm_vit(cfg: ViTConfig) -> nn.Module:
    """timm's ``VisionTransformer`` with the same hyper-parameters."""
    from timm.models.vision_transformer import VisionTransformer

    require(cfg, "timm ViT", act="gelu", norm_eps=1e-6, dynamic_size=False)
    return VisionTransformer(
        img_size=cfg.img_hw,
        patch_size=cfg.patch_size,
        in_chans=cfg.in_chans,
        num_classes=cfg.num_classes,
        global_pool=cfg.global_pool,
        embed_dim=cfg.embed_dim,
        depth=cfg.depth,
        num_heads=cfg.num_heads,
        mlp_ratio=cfg.mlp_ratio,
        qkv_bias=cfg.qkv_bias,
        qk_norm=cfg.qk_norm,
        init_values=cfg.init_values,
        class_token=cfg.class_token,
        no_embed_class=cfg.no_embed_class,
        pre_norm=cfg.pre_norm,
        fc_norm=cfg.fc_norm,
    )


REFERENCES.add("timm", Reference("timm", "timm", build_timm_vit, architectures=("image",)))
