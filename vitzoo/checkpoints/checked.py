"""Loading a state dict into a model, and checking a file's tensors against a config, with every mismatch named.

All raise one ``ValueError`` line: the architecture facts that differ (see :mod:`vitzoo.checkpoints.fit`), the
counts and first names of the missing, unexpected and mis-shaped keys, or the fields in which a folder's
``config.json`` and its weight file's metadata disagree.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import torch
from torch import nn

from vitzoo.checkpoints.fit import explain_mismatch, key_summary
from vitzoo.checkpoints.io import ARCH_KEY, CONFIG_KEY, LABELS_KEY, read_metadata, read_shapes
from vitzoo.config import BaseConfig, from_json
from vitzoo.errors import CheckpointFileError
from vitzoo.models import build_model
from vitzoo.registry import MODELS
from vitzoo.schema import did_you_mean


def load_checked(
    model: nn.Module, state_dict: dict[str, torch.Tensor], *, source: str = "state dict", source_cfg: Any = None
) -> None:
    """``load_state_dict`` that raises one ``ValueError`` line saying why a checkpoint does not fit.

    Differing architecture facts (width, depth, heads, patch or tubelet size, ...) are named with both values
    and the registered models that would fit (see :mod:`vitzoo.checkpoints.fit`); otherwise the counts and
    first names of the missing, unexpected and mis-shaped keys.
    """
    target = model.state_dict()
    missing = sorted(set(target) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(target))
    misshaped = sorted(
        f"{k}: {tuple(state_dict[k].shape)} vs model {tuple(target[k].shape)}"
        for k in set(state_dict) & set(target)
        if state_dict[k].shape != target[k].shape
    )
    if missing or unexpected or misshaped:
        why = explain_mismatch(state_dict, model.cfg, source_cfg=source_cfg) if hasattr(model, "cfg") else None
        if why is None and unexpected and all(k.startswith("module.") for k in unexpected):
            why = "its keys start with 'module.' (saved from a DistributedDataParallel wrapper): save model.module"
        raise CheckpointFileError(f"cannot load {source}: {why or key_summary(missing, unexpected, misshaped)}")
    model.load_state_dict(state_dict, strict=True)


def shape_mismatch(shapes: dict[str, tuple[int, ...]], cfg: Any) -> str | None:
    """Why tensors of these shapes do not fit ``cfg``'s model (None: they fit exactly), without allocating it.

    First the architecture facts (width, depth, patch, ...) read off the shapes against the config, then every
    tensor shape against a model built on the ``meta`` device: whatever the config claims (a 65536-wide or
    1000-deep model), nothing of its size is allocated.
    """
    skeletons = {k: torch.empty(shape, device="meta") for k, shape in shapes.items()}
    with torch.device("meta"):
        why = explain_mismatch(skeletons, cfg)
        if why is not None:
            return why
        expected = {k: tuple(v.shape) for k, v in build_model(cfg).state_dict().items()}
    if expected == shapes:
        return None
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    misshaped = sorted(
        f"{k}: {shapes[k]} vs {expected[k]}" for k in set(shapes) & set(expected) if shapes[k] != expected[k]
    )
    return key_summary(missing, unexpected, misshaped)


def check_state_shapes(state: dict[str, torch.Tensor], cfg: Any, *, source: str) -> None:
    """Raise one ``ValueError`` line unless ``state``'s tensors are exactly those of ``cfg``'s model (checked on the
    ``meta`` device, before anything of the config's size is built; see :func:`shape_mismatch`)."""
    why = shape_mismatch({k: tuple(v.shape) for k, v in state.items()}, cfg)
    if why is not None:
        raise CheckpointFileError(f"{source}: its tensors do not match the config it claims: {why}")


def check_file_shapes(path: str | os.PathLike, cfg: Any) -> None:
    """Raise one ``ValueError`` line unless the tensors in ``path``'s header are exactly those ``cfg``'s model has.

    Reads only the header (see :func:`shape_mismatch`: no memory is allocated for the model).
    """
    why = shape_mismatch(read_shapes(path), cfg)
    if why is not None:
        raise CheckpointFileError(f"{path}: its tensors do not match the config it claims: {why}")


def _fields(cfg: BaseConfig) -> dict[str, Any]:
    return {"class": type(cfg).__name__, **json.loads(json.dumps(dataclasses.asdict(cfg)))}  # tuples as lists


def check_folder_config(config: dict[str, Any], weights: str | os.PathLike, *, source: str) -> BaseConfig:
    """The config of a vitzoo folder's ``config.json``, checked against what its weight file records.

    ``model.safetensors`` written by vitzoo holds the model's architecture name and full config in its metadata;
    any field where ``config.json`` says otherwise (a hand-edited ``num_heads`` or ``norm_eps`` keeps every tensor
    shape but computes something else) raises one :class:`~vitzoo.errors.CheckpointFileError` line naming each
    field with both values. An ``architecture`` vitzoo has not registered is refused too.
    """
    arch = config.get("architecture") or ""
    if not isinstance(arch, str) or (arch and arch not in MODELS):
        hint = did_you_mean(arch, list(MODELS)) if isinstance(arch, str) else ""
        raise CheckpointFileError(
            f"{source}: config.json names architecture {arch!r}, which vitzoo does not have{hint}; "
            "restore the config.json save_pretrained wrote (its architecture is the model's registered name)"
        )
    if not isinstance(config.get("model_config"), dict):
        raise CheckpointFileError(
            f"{source}: config.json has no 'model_config' mapping; restore the one save_pretrained wrote"
        )
    cfg = from_json(json.dumps(config["model_config"]), source=f"{source}/config.json")
    meta = read_metadata(weights)
    claims, records = {"architecture": arch}, {"architecture": meta.get(ARCH_KEY, "")}
    if CONFIG_KEY in meta:
        claims.update(_fields(cfg))
        records.update(_fields(from_json(meta[CONFIG_KEY])))
    if LABELS_KEY in meta and "labels" in config:
        claims["labels"], records["labels"] = config["labels"], json.loads(meta[LABELS_KEY])
    differ = [k for k in claims if k in records and claims[k] != records[k]]
    if ARCH_KEY not in meta and CONFIG_KEY not in meta:
        differ = []  # a weight file without vitzoo metadata records nothing: its tensor shapes are checked instead
    if differ:
        both = ", ".join(f"{k}={claims[k]!r} vs {records[k]!r}" for k in differ)
        raise CheckpointFileError(
            f"{source}: config.json disagrees with the config recorded in {os.path.basename(weights)} ({both}, "
            "config.json first); the folder was edited by hand or mixed from two models: restore its config.json"
        )
    return cfg
