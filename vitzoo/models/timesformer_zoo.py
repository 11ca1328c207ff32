"""Registered TimeSformer models (Bertasius et al., 2021): ``timesformer_{size}_patch{p}_{img}``.

Divided space-time attention (``encoder="divided"``), 1-frame tubelets (a per-frame patch embedding),
class-token pooling. ``base`` is the paper's TimeSformer: ViT-B/16 width, 8 frames at 224 px. ``nano``
(4 frames at 32 px) is for CPU tests. ``temporal_init="copy"`` follows TimeSformer's ViT initialisation:
the temporal attention starts as a copy of the spatial one, behind a zero ``temporal_fc``.
"""

from __future__ import annotations

from functools import partial

from torch import nn

from vitzoo.config import VideoConfig
from vitzoo.models.reference import Reference, hf_transformer_fields, plain_transformer, require, square
from vitzoo.models.sizes import SIZES
from vitzoo.registry import MODELS, REFERENCES

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


def build_hf_timesformer(cfg: VideoConfig) -> nn.Module:
    """``transformers``' ``TimesformerForVideoClassification`` (divided space-time attention)."""
    from transformers import TimesformerConfig, TimesformerForVideoClassification

    require(cfg, "HF TimeSformer", encoder="divided", tubelet_size=1, class_token=True, global_pool="token")
    plain_transformer(cfg, "HF TimeSformer")
    hf_cfg = TimesformerConfig(
        image_size=square(cfg, "HF TimeSformer"),
        patch_size=cfg.patch_size,
        num_channels=cfg.in_chans,
        num_frames=cfg.num_frames,
        **hf_transformer_fields(cfg),
        attention_type="divided_space_time",
        num_labels=cfg.num_classes,
    )
    return TimesformerForVideoClassification(hf_cfg)


REFERENCES.add(
    "hf_timesformer",
    Reference(
        "hf_timesformer",
        "HF TimesformerModel",
        build_hf_timesformer,
        architectures=("divided",),
        layout="b c t h w -> b t c h w",
        logits=lambda out: out.logits,
    ),
)
