"""``transformers`` video families -> vitzoo ``VideoConfig`` + key tables: ViViT, TimeSformer, VideoMAE.

Each family has a ``*_config(hf_cfg, num_classes=..., head=...)`` reading the HF config (an
:class:`~vitzoo.checkpoints.hf_rules.HFConfig`) into a :class:`~vitzoo.config.VideoConfig`, and a
``*_rules(cfg, hf_cfg)`` key table for the backbone (HF keys without the ``vivit.`` / ``videomae.`` prefix).
"""

from __future__ import annotations

import logging
from typing import Any

from vitzoo.checkpoints.hf_rules import (
    BERT_BLOCK,
    Rule,
    block_rules,
    frame_kernel,
    fused_qv_bias,
    is_square,
    raise_unsupported,
    square,
    transformer_fields,
)
from vitzoo.config import VideoConfig
from vitzoo.layers.pos_embed import sincos_table

log = logging.getLogger(__name__)

_VIDEO_DEFAULTS = dict(
    num_channels=3,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)
# transformers' defaults of the fields read below (checked against the config classes by the tests)
VIVIT_DEFAULTS = dict(
    _VIDEO_DEFAULTS,
    image_size=224,
    num_frames=32,
    tubelet_size=[2, 16, 16],
    hidden_act="gelu_fast",
    layer_norm_eps=1e-6,
    qkv_bias=True,
)
TIMESFORMER_DEFAULTS = dict(
    _VIDEO_DEFAULTS,
    image_size=224,
    patch_size=16,
    num_frames=8,
    hidden_act="gelu",
    layer_norm_eps=1e-6,
    qkv_bias=True,
    drop_path_rate=0.0,
    attention_type="divided_space_time",
)
VIDEOMAE_DEFAULTS = dict(
    _VIDEO_DEFAULTS,
    image_size=224,
    patch_size=16,
    num_frames=16,
    tubelet_size=2,
    hidden_act="gelu",
    layer_norm_eps=1e-12,
    qv_bias=True,
    use_mean_pooling=True,
)
# VideoMAE's classifier normalises the pooled features with nn.LayerNorm's default eps, not layer_norm_eps.
VIDEOMAE_FC_NORM_EPS = 1e-5


def _trunk_rules(cfg: VideoConfig, trunk: str, *, qkv_bias: bool) -> list[Rule]:
    """The BERT-style blocks ``encoder.layer.{i}`` of ViViT and VideoMAE files into ``{trunk}blocks.{i}``."""
    rules: list[Rule] = []
    for i in range(cfg.depth):
        rules += block_rules(
            f"encoder.layer.{i}.", f"{trunk}blocks.{i}.", BERT_BLOCK, qkv="attention.attention", qkv_bias=qkv_bias
        )
    return rules


# ------------------------------------------------------------------------------------------------- ViViT
def vivit_config(hf_cfg: Any, *, num_classes: int, head: bool = True) -> VideoConfig:
    """A ``joint``-encoder :class:`VideoConfig` equivalent to an HF ``VivitConfig``."""
    tubelet = tuple(hf_cfg.tubelet_size)
    raise_unsupported(
        "ViViT",
        {
            f"tubelet_size={list(tubelet)} (expected [t, p, p])": len(tubelet) != 3 or tubelet[1] != tubelet[2],
            f"non-square image_size={hf_cfg.image_size!r}": not is_square(hf_cfg.image_size),
        },
    )
    t, p = int(tubelet[0]), int(tubelet[1])
    img = square(hf_cfg.image_size)
    raise_unsupported(
        "ViViT",
        {
            f"num_frames={hf_cfg.num_frames} not divisible by the tubelet's {t} frames (HF drops the rest)": (
                hf_cfg.num_frames % t != 0
            ),
            f"image_size={img} not divisible by patch size {p} (HF drops the rest)": img % p != 0,
        },
    )
    fields = transformer_fields(hf_cfg, "ViViT")
    if hf_cfg.hidden_dropout_prob > 0:
        log.warning(
            "ViViT hidden_dropout_prob=%g: vitzoo's MLP also drops after its activation, HF's ViViT does not "
            "(training only; eval outputs are identical)",
            hf_cfg.hidden_dropout_prob,
        )
    return VideoConfig(
        encoder="joint",
        num_frames=hf_cfg.num_frames,
        tubelet_size=t,
        patch_size=p,
        img_size=img,
        class_token=True,
        global_pool="token",
        qkv_bias=bool(hf_cfg.qkv_bias),
        num_classes=num_classes,
        **fields,
    )


def vivit_rules(cfg: VideoConfig, hf_cfg: Any) -> list[Rule]:
    """Key table: HF ``VivitModel`` file (no prefix) -> vitzoo ``VideoTransformer`` with the ``joint`` encoder."""
    enc = "encoder.transformer."
    rules: list[Rule] = [
        ("patch_embed.proj.weight", ("embeddings.patch_embeddings.projection.weight",), None),
        ("patch_embed.proj.bias", ("embeddings.patch_embeddings.projection.bias",), None),
        (f"{enc}cls_token", ("embeddings.cls_token",), None),
        (f"{enc}pos_embed", ("embeddings.position_embeddings",), None),
        (f"{enc}norm.weight", ("layernorm.weight",), None),
        (f"{enc}norm.bias", ("layernorm.bias",), None),
    ]
    return rules + _trunk_rules(cfg, enc, qkv_bias=cfg.qkv_bias)


# ------------------------------------------------------------------------------------------- TimeSformer
def timesformer_config(hf_cfg: Any, *, num_classes: int, head: bool = True) -> VideoConfig:
    """A ``divided``-encoder :class:`VideoConfig` equivalent to an HF ``TimesformerConfig``."""
    raise_unsupported(
        "TimeSformer",
        {
            f"attention_type={hf_cfg.attention_type!r} (only 'divided_space_time' is converted)": (
                hf_cfg.attention_type != "divided_space_time"
            ),
            f"non-square image_size={hf_cfg.image_size!r}": not is_square(hf_cfg.image_size),
            f"non-square patch_size={hf_cfg.patch_size!r}": not is_square(hf_cfg.patch_size),
        },
    )
    img, p = square(hf_cfg.image_size), square(hf_cfg.patch_size)
    raise_unsupported(
        "TimeSformer",
        {f"image_size={img} not divisible by patch_size={p} (HF drops the rest)": img % p != 0},
    )
    return VideoConfig(
        encoder="divided",
        num_frames=hf_cfg.num_frames,
        tubelet_size=1,
        patch_size=p,
        img_size=img,
        class_token=True,
        global_pool="token",
        temporal_init="copy",
        qkv_bias=bool(hf_cfg.qkv_bias),
        drop_path_rate=float(hf_cfg.drop_path_rate),
        num_classes=num_classes,
        **transformer_fields(hf_cfg, "TimeSformer"),
    )


def timesformer_rules(cfg: VideoConfig, hf_cfg: Any) -> list[Rule]:
    """Key table: HF ``TimesformerModel`` (no prefix) -> vitzoo ``VideoTransformer`` with the ``divided`` encoder."""
    rules: list[Rule] = [
        ("patch_embed.proj.weight", ("embeddings.patch_embeddings.projection.weight",), frame_kernel),
        ("patch_embed.proj.bias", ("embeddings.patch_embeddings.projection.bias",), None),
        ("encoder.cls_token", ("embeddings.cls_token",), None),
        ("encoder.pos_embed", ("embeddings.position_embeddings",), None),
        ("encoder.time_embed", ("embeddings.time_embeddings",), None),
        ("encoder.norm.weight", ("layernorm.weight",), None),
        ("encoder.norm.bias", ("layernorm.bias",), None),
    ]
    for i in range(cfg.depth):
        src, dst = f"encoder.layer.{i}.", f"encoder.blocks.{i}."
        pairs = [
            ("attention.output.dense", "attn.proj"),
            ("layernorm_before", "norm1"),
            ("layernorm_after", "norm2"),
            ("intermediate.dense", "mlp.fc1"),
            ("output.dense", "mlp.fc2"),
            ("temporal_layernorm", "temporal_norm"),
            ("temporal_attention.output.dense", "temporal_attn.proj"),
            ("temporal_dense", "temporal_fc"),
        ]
        rules += [
            (f"{dst}{ours}.{p}", (f"{src}{hf_name}.{p}",), None) for hf_name, ours in pairs for p in ("weight", "bias")
        ]
        qkv_params = ("weight", "bias") if cfg.qkv_bias else ("weight",)
        for hf_name, ours in (
            ("attention.attention.qkv", "attn.qkv"),
            ("temporal_attention.attention.qkv", "temporal_attn.qkv"),
        ):
            rules += [(f"{dst}{ours}.{p}", (f"{src}{hf_name}.{p}",), None) for p in qkv_params]
    return rules


# ---------------------------------------------------------------------------------------------- VideoMAE
def _videomae_qv_bias(hf_cfg: Any) -> bool:
    return bool(hf_cfg.get("qkv_bias", hf_cfg.qv_bias))  # older configs call it qkv_bias


def videomae_config(hf_cfg: Any, *, num_classes: int, head: bool = True) -> VideoConfig:
    """A ``joint``-encoder :class:`VideoConfig` equivalent to an HF ``VideoMAEConfig``.

    VideoMAE's encoder is ViViT's joint encoder with no class token, a fixed sinusoid position table
    (``pos_embed="sincos"``) and query / value biases only; with ``use_mean_pooling`` (the fine-tuned models) it
    has no final norm and its classifier normalises the mean of the tokens (``fc_norm``, eps 1e-5).
    """
    img, p, t = hf_cfg.image_size, hf_cfg.patch_size, int(hf_cfg.tubelet_size)
    raise_unsupported(
        "VideoMAE",
        {
            f"non-square image_size={img!r}": not is_square(img),
            f"non-square patch_size={p!r}": not is_square(p),
            "use_mean_pooling=False with a classifier (it reads the first patch token)": head
            and not hf_cfg.use_mean_pooling,
        },
    )
    img, p = square(img), square(p)
    raise_unsupported(
        "VideoMAE",
        {
            f"num_frames={hf_cfg.num_frames} not divisible by tubelet_size={t}": hf_cfg.num_frames % t != 0,
            f"image_size={img} not divisible by patch_size={p}": img % p != 0,
        },
    )
    mean_pool = bool(hf_cfg.use_mean_pooling)
    if mean_pool and not head:
        log.info(
            "VideoMAE backbone with use_mean_pooling: fc_norm (the norm after pooling) starts fresh, unit scale and "
            "zero shift, as VideoMAE's fine-tuning starts it"
        )
    return VideoConfig(
        encoder="joint",
        num_frames=hf_cfg.num_frames,
        tubelet_size=t,
        patch_size=p,
        img_size=img,
        class_token=False,
        global_pool="avg",
        fc_norm=mean_pool,
        fc_norm_eps=VIDEOMAE_FC_NORM_EPS if mean_pool else None,
        pos_embed="sincos",
        qkv_bias=_videomae_qv_bias(hf_cfg),
        num_classes=num_classes,
        **transformer_fields(hf_cfg, "VideoMAE"),
    )


def videomae_rules(cfg: VideoConfig, hf_cfg: Any) -> list[Rule]:
    """Key table: HF ``VideoMAEModel`` file (no prefix) -> vitzoo's ``joint`` encoder; the position table, which
    VideoMAE computes rather than stores, is computed here (:func:`~vitzoo.layers.pos_embed.sincos_table`)."""
    enc = "encoder.transformer."
    length, dim = cfg.num_tubelets * cfg.grid_hw[0] * cfg.grid_hw[1], cfg.embed_dim
    rules: list[Rule] = [
        ("patch_embed.proj.weight", ("embeddings.patch_embeddings.projection.weight",), None),
        ("patch_embed.proj.bias", ("embeddings.patch_embeddings.projection.bias",), None),
        (f"{enc}pos_embed", (), lambda: sincos_table(length, dim)),
    ]
    if not cfg.use_fc_norm:
        rules += [(f"{enc}norm.{p}", (f"layernorm.{p}",), None) for p in ("weight", "bias")]
    rules += _trunk_rules(cfg, enc, qkv_bias=False)
    if cfg.qkv_bias:
        for i in range(cfg.depth):
            src = f"encoder.layer.{i}.attention.attention."
            rules.append((f"{enc}blocks.{i}.attn.qkv.bias", (f"{src}q_bias", f"{src}v_bias"), fused_qv_bias))
    return rules


# transformers >= 5 may write the query / value biases under their in-memory names; the rules use the file names
VIDEOMAE_RENAMES = ((".attention.attention.query.bias", ".attention.attention.q_bias"),
                    (".attention.attention.value.bias", ".attention.attention.v_bias"))  # fmt: skip
