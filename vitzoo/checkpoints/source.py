"""A checkpoint read from anywhere, as one :class:`Checkpoint`: tensors in vitzoo's key layout and, when known, the
config of the model they come from.

Sources: a weight file (vitzoo's safetensors with its config in the metadata, or a bare timm-layout file / torch
pickle), the name of a file in ``weights/``, a checkpoint folder, or ``hf-hub:<org>/<name>[@<revision>]`` (read
through the Hugging Face cache, see :mod:`vitzoo.checkpoints.hub`). A folder's layout is recognised from its
``config.json`` and said in a log line:

=================  ==================================================  =========================================
layout             ``config.json``                                     converted by
=================  ==================================================  =========================================
vitzoo             ``"library_name": "vitzoo"`` (``save_pretrained``)  read as is (:mod:`~vitzoo.checkpoints.share`)
timm               ``"architecture"`` (timm's ``push_to_hf_hub``)      :mod:`~vitzoo.checkpoints.convert_timm`
transformers       ``"model_type"`` (``save_pretrained``)              :mod:`~vitzoo.checkpoints.convert_hf`
=================  ==================================================  =========================================

No source library model is built to read weights: state dicts and configs are mapped directly (timm builds its
architecture on the ``meta`` device to say its hyper-parameters, which live in its code).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vitzoo.checkpoints.hub import CheckpointFiles, checkpoint_files, is_hub_name
from vitzoo.checkpoints.io import ARCH_KEY, CONFIG_KEY, read_metadata, read_state_dict, resolve_weights
from vitzoo.config import BaseConfig, from_json

log = logging.getLogger(__name__)


@dataclass
class Checkpoint:
    """Tensors named as vitzoo's models name them, and the config of the model they come from (None: unknown)."""

    state: dict[str, torch.Tensor]
    config: BaseConfig | None
    source: str  # what messages call it
    arch: str = ""  # the registered name, for vitzoo checkpoints that have one

    def build(self) -> nn.Module:
        """The model :attr:`config` describes with these tensors loaded (in train mode, like a fresh model)."""
        from vitzoo.checkpoints.load import load_checked
        from vitzoo.models import build_model  # models import this package; resolved at call time

        if self.config is None:
            raise ValueError(
                f"{self.source} does not say its architecture (no config); build the model with "
                "vitzoo.create(name, pretrained=...) instead"
            )
        model = build_model(self.config)  # float32: half-precision tensors load into it exactly
        kernel = self.state.get("patch_embed.proj.weight")
        if kernel is not None and kernel.dtype == torch.float64:
            model.double()  # before loading, so float64 tensors are not rounded through float32
        load_checked(model, self.state, source=self.source)
        model.arch_name = self.arch
        return model


def strip_wrapper_prefix(state_dict: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Remove the ``module.`` prefix that ``DistributedDataParallel`` (or ``DataParallel``) puts on every key."""
    if state_dict and all(k.startswith("module.") for k in state_dict):
        log.info("%s was saved from a DistributedDataParallel wrapper: 'module.' prefix removed from every key", source)
        return {k[len("module.") :]: v for k, v in state_dict.items()}
    return state_dict


def folder_layout(config: dict[str, Any]) -> str:
    """``"vitzoo"``, ``"timm"`` or ``"transformers"`` from a folder's ``config.json``; raises for anything else."""
    if config.get("library_name") == "vitzoo":
        return "vitzoo"
    if "architecture" in config:
        return "timm"
    if "model_type" in config:
        return "transformers"
    raise ValueError(
        "unrecognised checkpoint folder: its config.json has none of 'library_name': 'vitzoo' (vitzoo), "
        f"'architecture' (timm), 'model_type' (transformers); keys: {sorted(config)[:10]}"
    )


def layout_config(files: CheckpointFiles, expected: str | None = None) -> dict[str, Any]:
    """A folder's ``config.json``; with ``expected``, raises ``ValueError`` unless the folder has that layout."""
    config = files.json("config.json")
    if config is None:
        files.require("config.json")  # raises: the Hub file is not cached and cannot be fetched, or there is none
    if expected is not None and (layout := folder_layout(config)) != expected:
        raise ValueError(f"{files.description} is a {layout} checkpoint, not a {expected} one; use vitzoo.load")
    return config


def read_folder(files: CheckpointFiles) -> Checkpoint:
    """The checkpoint in a folder or Hub repository, converted from its layout (see the module docstring)."""
    config = layout_config(files)
    layout = folder_layout(config)
    what = {"vitzoo": "library_name 'vitzoo'", "timm": f"architecture {config.get('architecture')!r}",
            "transformers": f"model_type {config.get('model_type')!r}"}[layout]  # fmt: skip
    log.info("%s: %s layout (config.json names %s)", files.description, layout, what)
    if layout == "vitzoo":
        from vitzoo.checkpoints.share import read_vitzoo_folder

        return read_vitzoo_folder(files, config)
    if layout == "timm":
        from vitzoo.checkpoints.convert_timm import timm_checkpoint

        return timm_checkpoint(files, config)
    from vitzoo.checkpoints.convert_hf import hf_checkpoint

    return hf_checkpoint(files, config)


def read_file(source: str | os.PathLike) -> Checkpoint:
    """A weight file (or the name of one in ``weights/``): its tensors and, for a vitzoo file, its config."""
    path = resolve_weights(source)
    state = strip_wrapper_prefix(read_state_dict(path), str(path))
    meta = read_metadata(path) if path.suffix == ".safetensors" else {}
    config = from_json(meta[CONFIG_KEY]) if CONFIG_KEY in meta else None
    arch = meta.get(ARCH_KEY, "") if config is not None else ""
    log.info("loading %s (%s)", path, f"vitzoo checkpoint of {arch or 'an unnamed model'}" if config else
             "checkpoint without vitzoo metadata")  # fmt: skip
    return Checkpoint(state=state, config=config, source=str(path), arch=arch)


def read_checkpoint(source: Checkpoint | str | os.PathLike) -> Checkpoint:
    """A :class:`Checkpoint` from a weight file, a name in ``weights/``, a folder or an ``hf-hub:`` name."""
    if isinstance(source, Checkpoint):
        return source
    if is_hub_name(source) or Path(source).is_dir():
        return read_folder(checkpoint_files(source))
    return read_file(source)


def from_hub(source: str | os.PathLike) -> nn.Module:
    """The model of a checkpoint folder or ``hf-hub:`` name (vitzoo, timm or transformers layout), in train mode."""
    if not (is_hub_name(source) or Path(source).is_dir()):
        raise ValueError(f"{source!r} is neither 'hf-hub:<org>/<name>' nor a checkpoint folder")
    return read_folder(checkpoint_files(source)).build()
