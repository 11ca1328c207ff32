"""Loading a state dict into a model, and checking a file's tensors against a config, with every mismatch named.

Both raise one ``ValueError`` line: the architecture facts that differ (see :mod:`vitzoo.checkpoints.fit`), or the
counts and first names of the missing, unexpected and mis-shaped keys.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from vitzoo.checkpoints.fit import explain_mismatch, key_summary
from vitzoo.checkpoints.io import read_shapes
from vitzoo.errors import CheckpointFileError
from vitzoo.models import build_model


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


def check_file_shapes(path: str | os.PathLike, cfg: Any) -> None:
    """Raise one ``ValueError`` line unless the tensors in ``path``'s header are exactly those ``cfg``'s model has.

    Reads only the header: first the architecture facts (width, depth, patch, ...) against the config, then
    every tensor shape against a model built on the ``meta`` device (no memory is allocated for it).
    """
    shapes = read_shapes(path)
    skeletons = {k: torch.empty(shape, device="meta") for k, shape in shapes.items()}
    with torch.device("meta"):
        why = explain_mismatch(skeletons, cfg)
        if why is None:
            expected = {k: tuple(v.shape) for k, v in build_model(cfg).state_dict().items()}
    if why is None and expected != shapes:
        missing = sorted(set(expected) - set(shapes))
        unexpected = sorted(set(shapes) - set(expected))
        misshaped = sorted(
            f"{k}: {shapes[k]} vs {expected[k]}" for k in set(shapes) & set(expected) if shapes[k] != expected[k]
        )
        why = key_summary(missing, unexpected, misshaped)
    if why is not None:
        raise CheckpointFileError(f"{path}: its tensors do not match the config it claims: {why}")
