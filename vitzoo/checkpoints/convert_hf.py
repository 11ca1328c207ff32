"""Hugging Face ``transformers`` checkpoints -> vitzoo models (exact: same outputs).

The source architecture is recognised by its class name (``config.json``'s ``architectures``, or the model
object's class) and said in a log line, never by sniffing its keys:

=========================================  ============================================================
``ViTModel``                               ViT (its pooler is dropped)
``ViTForImageClassification``              ViT and its linear head
``Dinov2Model``                            ViT with LayerScale, ``dynamic_size`` (its mask token is dropped)
``Dinov2WithRegistersModel``               the same with register tokens (``reg_tokens``)
``VivitModel`` / ``...ForVideo...``        ``joint`` encoder (ViViT model 1) [and its linear head]
``TimesformerModel`` / ``...ForVideo...``  ``divided`` encoder (TimeSformer) [and its linear head]
``VideoMAEModel``                          ``joint`` encoder, no class token, fixed sinusoid table, q/v biases
``VideoMAEForVideoClassification``         the same, mean pooling, ``fc_norm`` and linear head
``VideoMAEForPreTraining``                 a ``MaskedAutoencoder``: the encoder and the pre-training decoder
=========================================  ============================================================

The vitzoo config is read off the HF config (see :mod:`~vitzoo.checkpoints.hf_video` and
:mod:`~vitzoo.checkpoints.hf_image`), the tensors mapped by an explicit key table in the layout of HF weight files
(an HF tensor the table does not use, or a vitzoo tensor it does not fill, raises), the normalisation constants
read from the folder's ``preprocessor_config.json`` when there is one. HF options vitzoo does not implement
raise ``NotImplementedError`` naming them. A folder or ``hf-hub:`` name converts from its files without
building the HF model (transformers is not needed); a model object is converted through the files its
``save_pretrained`` writes.

Layouts differ only at the input: HF's video ``pixel_values`` are ``(B, T, C, H, W)``, vitzoo's clips
``(B, C, T, H, W)``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vitzoo.checkpoints import hf_image, hf_video, hf_videomae_pretraining
from vitzoo.checkpoints.checked import shape_mismatch
from vitzoo.checkpoints.checkpoint import Checkpoint, layout_config
from vitzoo.checkpoints.hf_rules import HFConfig, Rule, apply_rules, prefixed
from vitzoo.checkpoints.hub import CheckpointFiles, FolderFiles, checkpoint_files
from vitzoo.config import BaseConfig
from vitzoo.errors import CheckpointFileError, UnsupportedFeatureError

log = logging.getLogger(__name__)

PREPROCESSOR_FILES = ("preprocessor_config.json", "video_preprocessor_config.json")
POOLER = "a dense + tanh on the class token with no vitzoo counterpart; forward_features equals its input"
MASK_TOKEN = "used only by masked-image pre-training"


@dataclass(frozen=True)
class HFFamily:
    """One transformers model family: its defaults, config reader and backbone key table."""

    model_type: str
    description: str
    defaults: dict[str, Any]
    config: Callable[..., BaseConfig]
    rules: Callable[[Any, Any], list[Rule]]
    renames: tuple[tuple[str, str], ...] = ()  # key suffixes written under another name by some versions


@dataclass(frozen=True)
class HFArchitecture:
    """One transformers class of a family: where its backbone's keys are, its head, what it drops and why."""

    family: HFFamily
    backbone: str  # prefix of the backbone's keys ("" for the bare backbone)
    head: tuple[tuple[str, str], ...] = ()  # (vitzoo module, HF module): classifier side, no backbone prefix
    dropped: tuple[tuple[str, str], ...] = ()  # (HF key prefix, why)
    task: Any = None  # keys beside the backbone and how they extend its checkpoint (hf_videomae_pretraining.HFTask)


VIT = HFFamily("vit", "ViT -> vitzoo ViT", hf_image.VIT_DEFAULTS, hf_image.vit_config, hf_image.vit_rules)
DINOV2 = HFFamily(
    "dinov2", "DINOv2 -> vitzoo ViT with LayerScale", hf_image.DINOV2_DEFAULTS, hf_image.dinov2_config,
    hf_image.dinov2_rules,
)  # fmt: skip
DINOV2_REG = dataclasses.replace(
    DINOV2, model_type="dinov2_with_registers", description="DINOv2 with registers -> vitzoo ViT with reg_tokens",
    defaults=hf_image.DINOV2_REG_DEFAULTS,
)  # fmt: skip
VIVIT = HFFamily(
    "vivit", "ViViT model 1 (joint space-time attention) -> vitzoo 'joint' encoder", hf_video.VIVIT_DEFAULTS,
    hf_video.vivit_config, hf_video.vivit_rules,
)  # fmt: skip
TIMESFORMER = HFFamily(
    "timesformer", "TimeSformer (divided space-time attention) -> vitzoo 'divided' encoder",
    hf_video.TIMESFORMER_DEFAULTS, hf_video.timesformer_config, hf_video.timesformer_rules,
)  # fmt: skip
VIDEOMAE = HFFamily(
    "videomae", "VideoMAE -> vitzoo 'joint' encoder (fixed sinusoid table, mean pooling)", hf_video.VIDEOMAE_DEFAULTS,
    hf_video.videomae_config, hf_video.videomae_rules, renames=hf_video.VIDEOMAE_RENAMES,
)  # fmt: skip
FAMILIES = {f.model_type: f for f in (VIT, DINOV2, DINOV2_REG, VIVIT, TIMESFORMER, VIDEOMAE)}

_CLASSIFIER = (("head", "classifier"),)
ARCHITECTURES: dict[str, HFArchitecture] = {
    "ViTModel": HFArchitecture(VIT, "", dropped=(("pooler.", POOLER), ("embeddings.mask_token", MASK_TOKEN))),
    "ViTForImageClassification": HFArchitecture(VIT, "vit.", _CLASSIFIER, (("vit.pooler.", POOLER),)),
    "Dinov2Model": HFArchitecture(DINOV2, "", dropped=(("embeddings.mask_token", MASK_TOKEN),)),
    "Dinov2WithRegistersModel": HFArchitecture(DINOV2_REG, "", dropped=(("embeddings.mask_token", MASK_TOKEN),)),
    "VivitModel": HFArchitecture(VIVIT, "", dropped=(("pooler.", POOLER),)),
    "VivitForVideoClassification": HFArchitecture(VIVIT, "vivit.", _CLASSIFIER, (("vivit.pooler.", POOLER),)),
    "TimesformerModel": HFArchitecture(TIMESFORMER, ""),
    "TimesformerForVideoClassification": HFArchitecture(TIMESFORMER, "timesformer.", _CLASSIFIER),
    "VideoMAEModel": HFArchitecture(VIDEOMAE, ""),
    "VideoMAEForVideoClassification": HFArchitecture(VIDEOMAE, "videomae.", (*_CLASSIFIER, ("fc_norm", "fc_norm"))),
    "VideoMAEForPreTraining": HFArchitecture(VIDEOMAE, "videomae.", task=hf_videomae_pretraining.VIDEOMAE_PRETRAINING),
}


def _architecture(config: dict[str, Any], name: str | None) -> HFArchitecture:
    model_type = config.get("model_type")
    family = FAMILIES.get(model_type)
    if family is None:
        raise UnsupportedFeatureError(
            f"transformers model_type={model_type!r}: vitzoo converts {', '.join(sorted(FAMILIES))}"
        )
    if name is None:
        names = config.get("architectures") or []
        if len(names) != 1:
            raise CheckpointFileError(f"config.json lists architectures {names}; expected exactly one")
        name = names[0]
    arch = ARCHITECTURES.get(name)
    if arch is None or arch.family is not family:
        known = [n for n, a in ARCHITECTURES.items() if a.family is family]
        raise UnsupportedFeatureError(f"transformers {name}: of this family vitzoo converts {', '.join(known)}")
    return arch


def _renamed(state: dict[str, torch.Tensor], renames: tuple[tuple[str, str], ...]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        for old, new in renames:
            if key.endswith(old):
                key = key[: -len(old)] + new
        out[key] = value
    return out


def _preprocessing(files: CheckpointFiles, cfg: BaseConfig) -> BaseConfig:
    """``cfg`` with ``mean``/``std`` from the folder's preprocessor config (kept as they are without one)."""
    for name in PREPROCESSOR_FILES:
        proc = files.json(name)
        if proc is None:
            continue
        mean, std = proc.get("image_mean"), proc.get("image_std")
        if isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) == 3:
            log.info("%s: mean %s, std %s from %s", files.description, mean, std, name)
            return dataclasses.replace(cfg, mean=tuple(map(float, mean)), std=tuple(map(float, std)))
    log.info("%s: no preprocessor config with image_mean / image_std: mean and std left at %s / %s",
             files.description, cfg.mean, cfg.std)  # fmt: skip
    return cfg


def _head_rules(arch: HFArchitecture, state: dict[str, torch.Tensor]) -> list[Rule]:
    return [
        (f"{ours}.{p}", (f"{theirs}.{p}",), None)
        for ours, theirs in arch.head
        for p in ("weight", "bias")
        if f"{theirs}.{p}" in state
    ]


_LAYER = re.compile(r"(?:^|\.)encoder\.layer\.(\d+)\.")


def _check_claims(hf_cfg: HFConfig, state: dict[str, torch.Tensor], source: str) -> None:
    """``hidden_size`` / ``num_hidden_layers`` of ``config.json`` against the weights (one ``ValueError`` line)."""
    kernel = next((v for k, v in state.items() if k.endswith("patch_embeddings.projection.weight")), None)
    layers = {int(m.group(1)) for k in state if (m := _LAYER.search(k))}
    has = {"hidden_size": kernel.shape[0] if kernel is not None else None,
           "num_hidden_layers": max(layers) + 1 if layers else None}  # fmt: skip
    differ = [k for k, v in has.items() if v is not None and hf_cfg.get(k) != v]
    if differ:
        claims = ", ".join(f"{k}={hf_cfg.get(k)!r} but the weights have {has[k]}" for k in differ)
        raise CheckpointFileError(
            f"transformers {source}: config.json claims {claims}; it does not describe these weights"
        )


def _mapped_shapes(rules: list[Rule], state: dict[str, torch.Tensor], dropped: set[str]) -> dict[str, tuple[int, ...]]:
    """The shapes the key table would produce, computed on the ``meta`` device (tables it computes included)."""
    skeletons = {k: torch.empty(v.shape, dtype=v.dtype, device="meta") for k, v in state.items()}
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in apply_rules(rules, skeletons, dropped=dropped).items()}


def hf_checkpoint(files: CheckpointFiles, config: dict[str, Any], *, architecture: str | None = None) -> Checkpoint:
    """The vitzoo checkpoint of a transformers folder (``config.json`` + weights), without building the HF model.

    ``architecture`` overrides the class named in ``config.json`` (a subclass's files name the subclass).
    """
    arch = _architecture(config, architecture)
    family = arch.family
    hf_cfg = HFConfig(config, family.defaults)
    state = _renamed(files.state_dict(), family.renames)
    _check_claims(hf_cfg, state, files.description)  # before any key table or table of the claimed size is made
    classifier = state.get("classifier.weight") if arch.head else None
    num_classes = classifier.shape[0] if classifier is not None else 0
    cfg = _preprocessing(files, family.config(hf_cfg, num_classes=num_classes, head=bool(arch.head)))
    rules = prefixed(family.rules(cfg, hf_cfg), arch.backbone) + _head_rules(arch, state)
    if getattr(cfg, "use_fc_norm", False) and not any(dst.startswith("fc_norm.") for dst, _, _ in rules):
        dim = cfg.embed_dim
        rules += [("fc_norm.weight", (), lambda: torch.ones(dim)), ("fc_norm.bias", (), lambda: torch.zeros(dim))]
    dropped: set[str] = set()
    for prefix, why in arch.dropped:
        keys = sorted(k for k in state if k.startswith(prefix))
        if keys:
            log.warning("%s: dropped %s (%s): %s", files.description, prefix.rstrip("."), why, ", ".join(keys))
            dropped.update(keys)
    owned = {k for k in state if arch.task is not None and k.startswith(arch.task.prefixes)}  # the task's (decoder)
    why = shape_mismatch(_mapped_shapes(rules, state, dropped | owned), cfg)  # on "meta": nothing of the claimed size
    if why is not None:
        raise CheckpointFileError(f"transformers {files.description}: its tensors do not match its config.json: {why}")
    vitzoo_state = apply_rules(rules, state, dropped=dropped | owned)
    geometry = getattr(cfg, "grid_thw", None) or cfg.grid_hw
    log.info(
        "recognised transformers %s: %s; %s px, token grid %s, dim %d, depth %d, %d heads, %s, %d classes",
        architecture or config.get("architectures", ["?"])[0], family.description, "x".join(map(str, cfg.img_hw)),
        "x".join(map(str, geometry)), cfg.embed_dim, cfg.depth, cfg.num_heads, cfg.act, cfg.num_classes,
    )  # fmt: skip
    ckpt = Checkpoint(state=vitzoo_state, config=cfg, source=f"transformers {files.description}")
    return ckpt if arch.task is None else arch.task.extend(ckpt, {k: state[k] for k in owned}, config)


def _hf_class_name(model: nn.Module) -> str:
    for cls in type(model).__mro__:
        if cls.__name__ in ARCHITECTURES:
            return cls.__name__
    raise TypeError(f"from_hf converts {', '.join(ARCHITECTURES)}; got {type(model).__module__}.{type(model).__name__}")


def from_hf(source: nn.Module | str | os.PathLike) -> nn.Module:
    """Convert a ``transformers`` model (or its folder, or ``hf-hub:<org>/<name>``) to a vitzoo model, exactly.

    Accepts the classes in the module docstring (and their subclasses). A model object keeps its dtype, device
    and train/eval mode; a folder or Hub name gives a model in train mode on the CPU (``vitzoo.load`` gives it in
    eval mode). Video models take clips ``(B, C, T, H, W)`` where HF takes ``pixel_values (B, T, C, H, W)``. A
    bare backbone converts without a head (``num_classes=0``): ``forward_features`` then equals HF's
    ``last_hidden_state``.
    """
    if isinstance(source, (str, os.PathLike)):
        files = checkpoint_files(source)
        return hf_checkpoint(files, layout_config(files, "transformers")).build()
    name = _hf_class_name(source)
    subclass = "" if type(source).__name__ == name else f" (a subclass of {name})"
    log.info("converting %s%s through the files its save_pretrained writes", type(source).__name__, subclass)
    with tempfile.TemporaryDirectory(prefix="vitzoo-from-hf-") as folder:
        source.save_pretrained(folder)
        files = FolderFiles(folder)
        files.description = type(source).__name__
        ckpt = hf_checkpoint(files, files.json("config.json"), architecture=name)
    ref = next(source.parameters())
    return ckpt.build().to(device=ref.device, dtype=ref.dtype).train(source.training)


__all__ = ["ARCHITECTURES", "FAMILIES", "from_hf", "hf_checkpoint"]
