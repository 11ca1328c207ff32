"""Facts a checkpoint's weights were trained with that its tensor shapes do not show: the model takes them.

A CLIP tower normalises before its blocks and uses another LayerNorm eps, a SigLIP one the tanh GELU, DINOv2
LayerScale, VideoMAE a fixed position table and no class token. Built with vitzoo's registered defaults, a model
would load those weights and silently compute something else. So when a checkpoint says its config (a vitzoo
file or folder, a converted timm / transformers checkpoint), ``vitzoo.create(name, pretrained=...)`` gives the
model these facts from it, one log line naming each; ones the caller set explicitly win (with a warning when
they differ). :func:`check_facts` refuses a model built otherwise.

- :data:`TRUNK_FACTS`, always: how the transformer blocks compute (an image ViT initialising a video model too).
- :data:`PREPROCESSING`, always: the input normalisation the weights expect (``mean``, ``std``).
- :data:`LAYOUT_FACTS`, same architecture only (ViT -> ViT, video -> video with the same encoder): prefix tokens,
  pooling, position table. A video model keeps its own (its variant defines them) when initialised from an image
  ViT or from another encoder's checkpoint.

Sizes, widths, depths, heads, patch and tubelet sizes and the encoder are never taken: they name a different
model, and a mismatch raises one line saying which registered model would fit (:mod:`~vitzoo.checkpoints.fit`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from vitzoo.config import replace
from vitzoo.errors import CheckpointFileError

log = logging.getLogger(__name__)

TRUNK_FACTS = ("act", "norm_eps", "qkv_bias", "qk_norm", "init_values", "pre_norm")
PREPROCESSING = ("mean", "std")
LAYOUT_FACTS = (
    "class_token",
    "reg_tokens",
    "dist_token",
    "global_pool",
    "pool_include_prefix",
    "fc_norm",
    "fc_norm_eps",
    "no_embed_class",
    "resample_antialias",
    "pos_embed",
)


def adoptable(cfg: Any, source_cfg: Any) -> tuple[str, ...]:
    """The fact names ``cfg`` takes from a checkpoint with config ``source_cfg`` (both must have the field)."""
    same = type(cfg) is type(source_cfg) and getattr(cfg, "encoder", None) == getattr(source_cfg, "encoder", None)
    names = TRUNK_FACTS + PREPROCESSING + (LAYOUT_FACTS if same else ())
    return tuple(n for n in names if hasattr(cfg, n) and hasattr(source_cfg, n))


def fact(cfg: Any, name: str) -> Any:
    """The value of fact ``name`` in ``cfg`` as it acts: ``fc_norm`` None means timm's rule (:attr:`use_fc_norm`),
    ``fc_norm_eps`` None means ``norm_eps`` and means nothing without a norm after pooling."""
    if name == "fc_norm":
        return cfg.use_fc_norm
    if name == "fc_norm_eps":
        return (cfg.norm_eps if cfg.fc_norm_eps is None else cfg.fc_norm_eps) if cfg.use_fc_norm else None
    return getattr(cfg, name)


def adopt_facts(cfg: Any, source_cfg: Any, *, explicit: Collection[str] = (), source: str = "the checkpoint") -> Any:
    """``cfg`` with the checkpoint's facts (see the module docstring); names in ``explicit`` are left as they are."""
    if source_cfg is None:
        return cfg
    changes, kept = {}, {}
    for name in adoptable(cfg, source_cfg):
        ours, theirs = fact(cfg, name), fact(source_cfg, name)
        if ours == theirs:
            continue
        if name in explicit:
            kept[name] = (ours, theirs)
        else:
            changes[name] = getattr(source_cfg, name)  # the field as the checkpoint's config writes it
    for name, (ours, theirs) in kept.items():
        log.warning("%s=%r set explicitly; %s was trained with %s=%r", name, ours, source, name, theirs)
    if changes:
        log.info("the model takes from %s: %s", source, ", ".join(f"{k}={v!r}" for k, v in changes.items()))
        cfg = replace(cfg, **changes)
    return cfg


def check_facts(cfg: Any, source_cfg: Any, *, allowed: Collection[str] = (), source: str = "the checkpoint") -> None:
    """Raise one ``ValueError`` line if ``cfg`` differs from the checkpoint's config in a trunk or layout fact
    (``allowed``: differences the caller chose); differing ``mean`` / ``std`` only warn."""
    if source_cfg is None:
        return
    names = [n for n in adoptable(cfg, source_cfg) if n not in allowed]
    diffs = {n: (fact(cfg, n), fact(source_cfg, n)) for n in names if fact(cfg, n) != fact(source_cfg, n)}
    for name in PREPROCESSING:
        if name in diffs:
            ours, theirs = diffs.pop(name)
            log.warning("the model normalises with %s=%s, %s was trained with %s", name, ours, source, theirs)
    if diffs:
        theirs = ", ".join(f"{k}={b!r}" for k, (_, b) in diffs.items())
        ours = ", ".join(f"{k}={a!r}" for k, (a, _) in diffs.items())
        raise CheckpointFileError(
            f"{source} was trained with {theirs} but the model has {ours}; build it with "
            "vitzoo.create(name, pretrained=...), which takes these from the checkpoint, or pass them as overrides"
        )
