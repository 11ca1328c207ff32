"""Reference implementations built at exactly a vitzoo config, for the speed comparison.

Each :class:`Implementation` turns a vitzoo config into a model, names the input layout it expects and
extracts logits from its output. ``REFERENCES`` says which reference matches each architecture:

- image ViT: timm ``VisionTransformer``;
- ViViT joint (model 1): ``transformers`` ``VivitForVideoClassification`` with SDPA attention;
- ViViT factorised encoder / self-attention (models 2 and 3): vit-pytorch ``ViViT``
  (``variant="factorized_encoder"`` / ``"factorized_self_attention"``);
- TimeSformer (divided attention): ``transformers`` ``TimesformerForVideoClassification``;
- ViViT factorised dot-product (model 4): no public reference.

A reference that cannot represent a config option raises ``ValueError`` rather than silently
benchmarking a different model. vit-pytorch's attention has no qkv bias, so comparisons with it
build both sides with ``qkv_bias=False`` (see ``Implementation.overrides``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from vitzoo import models
from vitzoo.config import VideoConfig, ViTConfig

# vitzoo activation name -> transformers' ACT2FN name for the same function.
HF_ACTIVATIONS = {"gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh", "quick_gelu": "quick_gelu"}
VIT_PYTORCH_VARIANTS = {"fact_enc": "factorized_encoder", "fact_sa": "factorized_self_attention"}


@dataclass(frozen=True)
class Implementation:
    """How to build and call one implementation of an architecture.

    ``layout`` is the einops pattern that turns vitzoo's input (``b c h w`` images or ``b c t h w``
    clips) into this implementation's (applied once, outside the timed region, then made contiguous).
    ``overrides`` are config fields both sides of a comparison take so that the models are identical.
    """

    name: str
    label: str  # human-readable library name for tables
    build: Callable[[ViTConfig], nn.Module]
    layout: str | None = None
    logits: Callable[[Any], torch.Tensor] = lambda out: out
    overrides: dict[str, Any] = field(default_factory=dict)


def _require(cfg: ViTConfig, reference: str, **expected: Any) -> None:
    """Raise unless every named config field has the value the reference implements."""
    wrong = {k: getattr(cfg, k) for k, v in expected.items() if getattr(cfg, k) != v}
    if wrong:
        raise ValueError(f"{reference} cannot represent {wrong}; it implements {expected}")


def _plain_transformer(cfg: ViTConfig, reference: str) -> None:
    _require(cfg, reference, qk_norm=False, init_values=None, drop_path_rate=0.0)


def build_vitzoo(cfg: ViTConfig) -> nn.Module:
    """The vitzoo model itself."""
    return models.build_model(cfg)


def build_timm_vit(cfg: ViTConfig) -> nn.Module:
    """timm's ``VisionTransformer`` with the same hyper-parameters."""
    from timm.models.vision_transformer import VisionTransformer

    if isinstance(cfg, VideoConfig):
        raise ValueError("timm's VisionTransformer is an image model; got a VideoConfig")
    _require(cfg, "timm ViT", act="gelu", norm_eps=1e-6, dynamic_img_size=False)
    return VisionTransformer(
        img_size=cfg.img_size,
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


def _hf_transformer_fields(cfg: VideoConfig) -> dict:
    """The HF config fields both HF video models share (width, depth, heads, MLP, activation, norm, bias)."""
    return dict(
        hidden_size=cfg.embed_dim,
        num_hidden_layers=cfg.depth,
        num_attention_heads=cfg.num_heads,
        intermediate_size=int(cfg.embed_dim * cfg.mlp_ratio),
        hidden_act=HF_ACTIVATIONS[cfg.act],
        layer_norm_eps=cfg.norm_eps,
        qkv_bias=cfg.qkv_bias,
    )


def build_hf_vivit(cfg: VideoConfig) -> nn.Module:
    """``transformers``' ``VivitForVideoClassification`` (joint attention) with SDPA attention."""
    from transformers import VivitConfig, VivitForVideoClassification

    _require(cfg, "HF ViViT", encoder="joint", class_token=True, global_pool="token")
    _plain_transformer(cfg, "HF ViViT")
    hf_cfg = VivitConfig(
        image_size=cfg.img_size,
        num_frames=cfg.num_frames,
        tubelet_size=[cfg.tubelet_size, cfg.patch_size, cfg.patch_size],
        num_channels=cfg.in_chans,
        **_hf_transformer_fields(cfg),
        num_labels=cfg.num_classes,
    )
    return VivitForVideoClassification._from_config(hf_cfg, attn_implementation="sdpa")


def build_hf_timesformer(cfg: VideoConfig) -> nn.Module:
    """``transformers``' ``TimesformerForVideoClassification`` (divided space-time attention)."""
    from transformers import TimesformerConfig, TimesformerForVideoClassification

    _require(cfg, "HF TimeSformer", encoder="divided", tubelet_size=1, class_token=True, global_pool="token")
    _plain_transformer(cfg, "HF TimeSformer")
    hf_cfg = TimesformerConfig(
        image_size=cfg.img_size,
        patch_size=cfg.patch_size,
        num_channels=cfg.in_chans,
        num_frames=cfg.num_frames,
        **_hf_transformer_fields(cfg),
        attention_type="divided_space_time",
        num_labels=cfg.num_classes,
    )
    return TimesformerForVideoClassification(hf_cfg)


def build_vit_pytorch_vivit(cfg: VideoConfig) -> nn.Module:
    """vit-pytorch's ``ViViT`` (factorised encoder or factorised self-attention)."""
    from vit_pytorch.vivit import ViViT

    if cfg.encoder not in VIT_PYTORCH_VARIANTS:
        raise ValueError(f"vit-pytorch ViViT implements {sorted(VIT_PYTORCH_VARIANTS)}, not {cfg.encoder!r}")
    _require(cfg, "vit-pytorch ViViT", act="gelu", qkv_bias=False, temporal_num_heads=None)
    _plain_transformer(cfg, "vit-pytorch ViViT")
    fact_sa = cfg.encoder == "fact_sa"
    return ViViT(
        image_size=cfg.img_size,
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


IMPLEMENTATIONS: dict[str, Implementation] = {
    impl.name: impl
    for impl in (
        Implementation("vitzoo", "vitzoo", build_vitzoo),
        Implementation("timm", "timm", build_timm_vit),
        Implementation(
            "hf_vivit",
            "HF VivitModel (sdpa)",
            build_hf_vivit,
            layout="b c t h w -> b t c h w",
            logits=lambda out: out.logits,
        ),
        Implementation(
            "hf_timesformer",
            "HF TimesformerModel",
            build_hf_timesformer,
            layout="b c t h w -> b t c h w",
            logits=lambda out: out.logits,
        ),
        Implementation("vit_pytorch", "vit-pytorch ViViT", build_vit_pytorch_vivit, overrides={"qkv_bias": False}),
    )
}

# Architecture key (``"image"`` or a video encoder name) -> reference implementations compared with vitzoo.
REFERENCES: dict[str, tuple[str, ...]] = {
    "image": ("timm",),
    "joint": ("hf_vivit",),
    "fact_enc": ("vit_pytorch",),
    "fact_sa": ("vit_pytorch",),
    "fact_dot": (),
    "divided": ("hf_timesformer",),
    "frame_avg": (),
}


def architecture(cfg: ViTConfig) -> str:
    """``"image"`` for a ViT, else the video encoder's name (the key of :data:`REFERENCES`)."""
    return cfg.encoder if isinstance(cfg, VideoConfig) else "image"
