"""Registered video models.

ViViT (Arnab et al., 2021): ``vivit_{encoder}_{size}_{patch}x{tubelet}``, 32 frames at 224 px for
tiny..large (the paper's setting); 4 frames at 32 px for the CPU-test ``nano``, and 8 frames at
32 px with 4x4 patches for the CPU demo's ``micro``. The bare names
(``vivit_joint``, ``vivit_fact_enc``, ...) are aliases of the base 16x2 models. There is no
``vivit_fact_dot_tiny``: ViT-Ti's 3 heads cannot be split half in space, half in time.

VTN (Neimark et al., 2021): ``vtn_{size}_patch16_224`` is the factorised encoder with 1-frame tubelets
(a per-frame ViT) and a 3-layer temporal transformer over the frame class tokens. The paper's temporal
module is a Longformer (sliding-window attention for long inputs) and its head an MLP; at the 16-frame
clips used here full attention is exact and cheap, so vitzoo uses a standard transformer and a linear head.

Frame averaging (``frame_avg_{size}_patch{p}_{img}``): a ViT on every frame, features averaged over time;
a baseline without temporal modelling (TSN-style single-frame averaging).
"""

from __future__ import annotations

from functools import partial

from torch import nn

from vitzoo.config import VideoConfig
from vitzoo.models.reference import Reference, hf_transformer_fields, plain_transformer, require, square
from vitzoo.models.sizes import SIZES
from vitzoo.registry import MODELS, REFERENCES

# Encoder name -> options fixed by the variant (pooling follows the paper for each model).
VIVIT_ENCODERS = {
    "joint": dict(class_token=True, global_pool="token"),
    "fact_enc": dict(class_token=True, global_pool="token"),
    "fact_sa": dict(class_token=False, global_pool="avg"),
    "fact_dot": dict(class_token=False, global_pool="avg"),
}
PER_FRAME = dict(class_token=True, global_pool="token")
# Size -> (patch, tubelet, frames, image size, temporal depth for the factorised encoder).
VIVIT_GEOMETRY = {
    "nano": (8, 2, 4, 32, 1),
    "micro": (4, 2, 8, 32, 2),
    "tiny": (16, 2, 32, 224, 4),
    "small": (16, 2, 32, 224, 4),
    "base": (16, 2, 32, 224, 4),
    "large": (16, 2, 32, 224, 4),
}


def _video(encoder: str, size: str, **geometry) -> VideoConfig:
    return VideoConfig(encoder=encoder, **SIZES[size], **VIVIT_ENCODERS.get(encoder, PER_FRAME), **geometry)


for _enc in VIVIT_ENCODERS:
    for _size, (_p, _t, _frames, _img, _tdepth) in VIVIT_GEOMETRY.items():
        if _enc == "fact_dot" and SIZES[_size]["num_heads"] % 2:
            continue  # ViT-Ti has 3 heads, which cannot be split half in space, half in time
        MODELS.add(
            f"vivit_{_enc}_{_size}_{_p}x{_t}",
            partial(
                _video,
                _enc,
                _size,
                patch_size=_p,
                tubelet_size=_t,
                num_frames=_frames,
                img_size=_img,
                temporal_depth=_tdepth,
            ),
        )
    MODELS.alias(f"vivit_{_enc}", f"vivit_{_enc}_base_16x2")

for _size in ("nano", "tiny", "small", "base"):
    _p, _img, _frames = (8, 32, 4) if _size == "nano" else (16, 224, 16)
    MODELS.add(
        f"vtn_{_size}_patch{_p}_{_img}",
        partial(
            _video,
            "fact_enc",
            _size,
            patch_size=_p,
            tubelet_size=1,
            num_frames=_frames,
            img_size=_img,
            temporal_depth=1 if _size == "nano" else 3,
        ),
    )

for _size, (_p, _img, _frames) in {"nano": (8, 32, 4), "micro": (4, 32, 8)}.items():
    MODELS.add(
        f"frame_avg_{_size}_patch{_p}_{_img}",
        partial(_video, "frame_avg", _size, patch_size=_p, tubelet_size=1, num_frames=_frames, img_size=_img),
    )


# ------------------------------------------------------------------------------------------- benchmark references
VIT_PYTORCH_VARIANTS = {"fact_enc": "factorized_encoder", "fact_sa": "factorized_self_attention"}


def build_hf_vivit(cfg: VideoConfig) -> nn.Module:
    """``transformers``' ``VivitForVideoClassification`` (joint attention) with SDPA attention."""
    from transformers import VivitConfig, VivitForVideoClassification

    require(cfg, "HF ViViT", encoder="joint", class_token=True, global_pool="token")
    plain_transformer(cfg, "HF ViViT")
    hf_cfg = VivitConfig(
        image_size=square(cfg, "HF ViViT"),
        num_frames=cfg.num_frames,
        tubelet_size=[cfg.tubelet_size, cfg.patch_size, cfg.patch_size],
        num_channels=cfg.in_chans,
        **hf_transformer_fields(cfg),
        num_labels=cfg.num_classes,
    )
    return VivitForVideoClassification._from_config(hf_cfg, attn_implementation="sdpa")


def build_vit_pytorch_vivit(cfg: VideoConfig) -> nn.Module:
    """vit-pytorch's ``ViViT`` (factorised encoder or factorised self-attention)."""
    from vit_pytorch.vivit import ViViT

    if cfg.encoder not in VIT_PYTORCH_VARIANTS:
        raise ValueError(f"vit-pytorch ViViT implements {sorted(VIT_PYTORCH_VARIANTS)}, not {cfg.encoder!r}")
    require(cfg, "vit-pytorch ViViT", act="gelu", qkv_bias=False, temporal_num_heads=None)
    plain_transformer(cfg, "vit-pytorch ViViT")
    fact_sa = cfg.encoder == "fact_sa"
    return ViViT(
        image_size=square(cfg, "vit-pytorch ViViT"),
        image_patch_size=cfg.patch_size,
        frames=cfg.num_frames,
        frame_patch_size=cfg.tubelet_size,
        num_classes=cfg.num_classes,
        dim=cfg.embed_dim,
        spatial_depth=cfg.depth,
        temporal_depth=cfg.depth if fact_sa else cfg.temporal_depth,
        heads=cfg.num_heads,
        dim_head=cfg.embed_dim // cfg.num_heads,
        mlp_dim=int(cfg.embed_dim * cfg.mlp_ratio),
        pool="cls" if cfg.global_pool == "token" else "mean",
        channels=cfg.in_chans,
        variant=VIT_PYTORCH_VARIANTS[cfg.encoder],
    )


REFERENCES.add(
    "hf_vivit",
    Reference(
        "hf_vivit",
        "HF VivitModel (sdpa)",
        build_hf_vivit,
        architectures=("joint",),
        layout="b c t h w -> b t c h w",
        logits=lambda out: out.logits,
    ),
)
REFERENCES.add(
    "vit_pytorch",
    Reference(
        "vit_pytorch",
        "vit-pytorch ViViT",
        build_vit_pytorch_vivit,
        architectures=tuple(VIT_PYTORCH_VARIANTS),
        overrides={"qkv_bias": False},
    ),
)
