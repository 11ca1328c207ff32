"""Hugging Face ``transformers`` ViViT / TimeSformer -> vitzoo video models (exact: same outputs).

The source architecture is recognised by the model's class (and said in a log line), never by its keys:

=====================================  ====================================================
``VivitForVideoClassification``        ``joint`` encoder (ViViT model 1) and a linear head
``VivitModel``                         ``joint`` encoder, no head (its pooler is dropped)
``TimesformerForVideoClassification``  ``divided`` encoder (TimeSformer) and a linear head
``TimesformerModel``                   ``divided`` encoder, no head
=====================================  ====================================================

The :class:`~vitzoo.config.VideoConfig` is read off the HF config: frames, image size, tubelet / patch size,
width, depth, heads, ``intermediate_size`` -> ``mlp_ratio``, ``hidden_act`` -> ``act``, ``layer_norm_eps`` ->
``norm_eps``, ``qkv_bias``, ``num_labels`` -> ``num_classes``, dropout and stochastic-depth rates. The tensors
are then mapped by an explicit key table (HF's separate query / key / value projections concatenated into
vitzoo's fused ``qkv``); an HF tensor the table does not use, or a vitzoo tensor it does not fill, raises.
HF options vitzoo does not implement raise ``NotImplementedError`` naming them.

Layouts differ only at the input: HF's ``pixel_values`` are ``(B, T, C, H, W)``, vitzoo's clips
``(B, C, T, H, W)``. Normalisation constants (``mean``/``std``) live in HF's processors, not its models, so
the converted config keeps vitzoo's defaults; set them from the processor you use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vitzoo.checkpoints.load import load_checked
from vitzoo.config import VideoConfig
from vitzoo.models.video import VideoTransformer

log = logging.getLogger(__name__)

# HF ``hidden_act`` -> vitzoo ``act``. gelu_fast / gelu_new / gelu_pytorch_tanh are all the tanh approximation.
HF_ACTIVATIONS = {"gelu": "gelu", "gelu_fast": "gelu_tanh", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}

# One mapping rule: vitzoo key, the HF keys it is made of, and how (None: the single HF tensor unchanged).
Rule = tuple[str, tuple[str, ...], Callable[..., torch.Tensor] | None]


def _fused_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Separate ``(D, D)`` query / key / value projections -> vitzoo's fused ``(3D, D)`` (or biases ``(3D,)``)."""
    return torch.cat([q, k, v], dim=0)


def _frame_kernel(weight: torch.Tensor) -> torch.Tensor:
    """A per-frame ``Conv2d`` kernel ``(D, C, p, p)`` -> the equivalent 1-frame tubelet kernel ``(D, C, 1, p, p)``."""
    return weight.unsqueeze(2)


def _raise_unsupported(model_name: str, found: dict[str, bool]) -> None:
    names = [name for name, present in found.items() if present]
    if names:
        raise NotImplementedError(f"{model_name} uses options vitzoo does not implement: {'; '.join(names)}")


def _square(value: Any) -> int:
    """An int, or the common value of an all-equal list / tuple (callers check squareness first)."""
    return int(value[0]) if isinstance(value, (list, tuple)) else int(value)


def _is_square(value: Any) -> bool:
    return not isinstance(value, (list, tuple)) or len(set(value)) == 1


def transformer_fields(hf_cfg: Any, model_name: str) -> dict[str, Any]:
    """The :class:`~vitzoo.config.TransformerConfig` fields (and ``in_chans``) of an HF ViViT / TimeSformer config."""
    dim, heads, hidden = hf_cfg.hidden_size, hf_cfg.num_attention_heads, hf_cfg.intermediate_size
    head_dim = getattr(hf_cfg, "head_dim", None)
    act = hf_cfg.hidden_act
    _raise_unsupported(
        model_name,
        {
            f"hidden_act={act!r} (supported: {', '.join(HF_ACTIVATIONS)})": not isinstance(act, str)
            or act not in HF_ACTIVATIONS,
            f"hidden_size={dim} not divisible by num_attention_heads={heads}": dim % heads != 0,
            f"head_dim={head_dim} != hidden_size / num_attention_heads": head_dim is not None
            and head_dim * heads != dim,
            f"intermediate_size={hidden} not expressible as int(hidden_size * mlp_ratio)": int(dim * (hidden / dim))
            != hidden,
        },
    )
    return dict(
        embed_dim=dim,
        depth=hf_cfg.num_hidden_layers,
        num_heads=heads,
        mlp_ratio=hidden / dim,
        qkv_bias=bool(hf_cfg.qkv_bias),
        act=HF_ACTIVATIONS[act],
        norm_eps=float(hf_cfg.layer_norm_eps),
        in_chans=hf_cfg.num_channels,
        attn_drop_rate=float(hf_cfg.attention_probs_dropout_prob),
        proj_drop_rate=float(hf_cfg.hidden_dropout_prob),
        pos_drop_rate=float(hf_cfg.hidden_dropout_prob),
    )


# ------------------------------------------------------------------------------------------------- ViViT
def vivit_config(hf_cfg: Any, *, num_classes: int) -> VideoConfig:
    """A ``joint``-encoder :class:`VideoConfig` equivalent to an HF ``VivitConfig``."""
    tubelet = tuple(hf_cfg.tubelet_size)
    _raise_unsupported(
        "ViViT",
        {
            f"tubelet_size={list(tubelet)} (expected [t, p, p])": len(tubelet) != 3 or tubelet[1] != tubelet[2],
            f"non-square image_size={hf_cfg.image_size!r}": not _is_square(hf_cfg.image_size),
        },
    )
    t, p = int(tubelet[0]), int(tubelet[1])
    img = _square(hf_cfg.image_size)
    _raise_unsupported(
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
        num_classes=num_classes,
        **fields,
    )


def vivit_rules(cfg: VideoConfig) -> list[Rule]:
    """Key table: HF ``VivitModel`` (no prefix) -> vitzoo ``VideoTransformer`` with the ``joint`` encoder."""
    enc = "encoder.transformer."
    rules: list[Rule] = [
        ("patch_embed.proj.weight", ("embeddings.patch_embeddings.projection.weight",), None),
        ("patch_embed.proj.bias", ("embeddings.patch_embeddings.projection.bias",), None),
        (f"{enc}cls_token", ("embeddings.cls_token",), None),
        (f"{enc}pos_embed", ("embeddings.position_embeddings",), None),
        (f"{enc}norm.weight", ("layernorm.weight",), None),
        (f"{enc}norm.bias", ("layernorm.bias",), None),
    ]
    params = ("weight", "bias") if cfg.qkv_bias else ("weight",)
    for i in range(cfg.depth):
        src, dst = f"layers.{i}.", f"{enc}blocks.{i}."
        rules += [
            (f"{dst}attn.qkv.{p}", tuple(f"{src}attention.{n}_proj.{p}" for n in "qkv"), _fused_qkv) for p in params
        ]
        for hf_name, ours in (
            ("attention.o_proj", "attn.proj"),
            ("layernorm_before", "norm1"),
            ("layernorm_after", "norm2"),
            ("mlp.fc1", "mlp.fc1"),
            ("mlp.fc2", "mlp.fc2"),
        ):
            rules += [(f"{dst}{ours}.{p}", (f"{src}{hf_name}.{p}",), None) for p in ("weight", "bias")]
    return rules


# ------------------------------------------------------------------------------------------- TimeSformer
def timesformer_config(hf_cfg: Any, *, num_classes: int) -> VideoConfig:
    """A ``divided``-encoder :class:`VideoConfig` equivalent to an HF ``TimesformerConfig``."""
    _raise_unsupported(
        "TimeSformer",
        {
            f"attention_type={hf_cfg.attention_type!r} (only 'divided_space_time' is converted)": (
                hf_cfg.attention_type != "divided_space_time"
            ),
            f"non-square image_size={hf_cfg.image_size!r}": not _is_square(hf_cfg.image_size),
            f"non-square patch_size={hf_cfg.patch_size!r}": not _is_square(hf_cfg.patch_size),
        },
    )
    img, p = _square(hf_cfg.image_size), _square(hf_cfg.patch_size)
    _raise_unsupported(
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
        drop_path_rate=float(hf_cfg.drop_path_rate),
        num_classes=num_classes,
        **transformer_fields(hf_cfg, "TimeSformer"),
    )


def timesformer_rules(cfg: VideoConfig) -> list[Rule]:
    """Key table: HF ``TimesformerModel`` (no prefix) -> vitzoo ``VideoTransformer`` with the ``divided`` encoder."""
    rules: list[Rule] = [
        ("patch_embed.proj.weight", ("embeddings.patch_embeddings.projection.weight",), _frame_kernel),
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


# ---------------------------------------------------------------------------------------------- dispatch
@dataclass(frozen=True)
class HFSource:
    """How one HF model class converts: where its backbone sits, what it is, and its config / key tables."""

    cls: type
    backbone: str  # prefix of the backbone's keys ("" for the bare backbone)
    description: str
    config: Callable[..., VideoConfig]
    rules: Callable[[VideoConfig], list[Rule]]
    has_head: bool


def hf_sources() -> list[HFSource]:
    """The HF classes :func:`from_hf` converts (imports ``transformers``, which vitzoo does not require)."""
    from transformers import (
        TimesformerForVideoClassification,
        TimesformerModel,
        VivitForVideoClassification,
        VivitModel,
    )

    vivit = "ViViT model 1 (joint space-time attention) -> vitzoo 'joint' encoder"
    tsf = "TimeSformer (divided space-time attention) -> vitzoo 'divided' encoder"
    return [
        HFSource(VivitForVideoClassification, "vivit.", vivit, vivit_config, vivit_rules, has_head=True),
        HFSource(VivitModel, "", vivit, vivit_config, vivit_rules, has_head=False),
        HFSource(TimesformerForVideoClassification, "timesformer.", tsf, timesformer_config, timesformer_rules, True),
        HFSource(TimesformerModel, "", tsf, timesformer_config, timesformer_rules, has_head=False),
    ]


def apply_rules(rules: list[Rule], hf_state: dict[str, torch.Tensor], *, dropped: set[str]) -> dict[str, torch.Tensor]:
    """vitzoo state dict from ``hf_state`` by the key table; every HF key must be used or listed in ``dropped``."""
    missing = sorted({s for _, srcs, _ in rules for s in srcs} - set(hf_state))
    if missing:
        raise ValueError(f"the HF state dict lacks tensors the mapping needs: {missing}")
    out, used = {}, set()
    for dst, srcs, combine in rules:
        tensors = [hf_state[s] for s in srcs]
        used.update(srcs)
        out[dst] = (combine or (lambda x: x))(*tensors).detach().clone()
    leftover = sorted(set(hf_state) - used - dropped)
    if leftover:
        raise NotImplementedError(f"HF tensors with no vitzoo counterpart: {leftover}")
    return out


def from_hf(model: nn.Module) -> VideoTransformer:
    """Convert an HF ``transformers`` ViViT or TimeSformer model to a vitzoo ``VideoTransformer``, exactly.

    Accepts ``VivitForVideoClassification``, ``VivitModel``, ``TimesformerForVideoClassification`` and
    ``TimesformerModel`` (see the module docstring). The result has the source's dtype, device and
    train/eval mode; it takes clips ``(B, C, T, H, W)`` where HF takes ``pixel_values (B, T, C, H, W)``.
    A bare backbone converts without a head (``num_classes=0``): ``forward_features`` then equals HF's
    ``last_hidden_state[:, 0]``.
    """
    sources = hf_sources()
    source = next((s for s in sources if isinstance(model, s.cls)), None)
    if source is None:
        names = ", ".join(s.cls.__name__ for s in sources)
        raise TypeError(f"from_hf converts {names}; got {type(model).__module__}.{type(model).__name__}")
    hf_cfg = model.config
    num_classes = hf_cfg.num_labels if source.has_head else 0
    cfg = source.config(hf_cfg, num_classes=num_classes)
    subclass = "" if type(model) is source.cls else f", a subclass of {source.cls.__name__}"
    log.info(
        "recognised transformers %s%s: %s, %d frames at %d px, tubelet %dx%dx%d, dim %d, depth %d, %d heads, %s",
        type(model).__name__, subclass, source.description, cfg.num_frames, cfg.img_size, cfg.tubelet_size,
        cfg.patch_size, cfg.patch_size, cfg.embed_dim, cfg.depth, cfg.num_heads,
        f"{num_classes}-class head" if source.has_head else "no head",
    )  # fmt: skip

    rules = [(dst, tuple(source.backbone + s for s in srcs), fn) for dst, srcs, fn in source.rules(cfg)]
    if source.has_head and num_classes > 0:
        rules += [(f"head.{p}", (f"classifier.{p}",), None) for p in ("weight", "bias")]
    dropped: set[str] = set()
    if getattr(model, "pooler", None) is not None:  # VivitModel(add_pooling_layer=True)
        dropped = {f"{source.backbone}pooler.{k}" for k in model.pooler.state_dict()}
        log.warning(
            "%s's pooler (dense + tanh on the class token) has no vitzoo counterpart and is dropped: %s; "
            "vitzoo's forward_features equals the pooler's input, last_hidden_state[:, 0]",
            type(model).__name__, ", ".join(sorted(dropped)),
        )  # fmt: skip
    state = apply_rules(rules, model.state_dict(), dropped=dropped)

    ours = VideoTransformer(cfg)
    load_checked(ours, state, source=f"transformers {type(model).__name__}")
    ref = next(model.parameters())
    return ours.to(device=ref.device, dtype=ref.dtype).train(model.training)
