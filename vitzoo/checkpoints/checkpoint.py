"""A checkpoint as vitzoo holds it (:class:`Checkpoint`: tensors in vitzoo's key layout and, when known, the config
of the model they come from) and the helpers that recognise a checkpoint folder's layout.

A leaf of the checkpoints package: the readers and converters (:mod:`~vitzoo.checkpoints.source`,
:mod:`~vitzoo.checkpoints.share`, :mod:`~vitzoo.checkpoints.convert_timm`, :mod:`~vitzoo.checkpoints.convert_hf`)
import it, and it imports none of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from vitzoo import models
from vitzoo.checkpoints.checked import check_state_shapes, load_checked
from vitzoo.checkpoints.hub import CheckpointFiles
from vitzoo.config import BaseConfig
from vitzoo.errors import CheckpointFileError

log = logging.getLogger(__name__)


@dataclass
class Checkpoint:
    """Tensors named as vitzoo's models name them, and the config of the model they come from (None: unknown)."""

    state: dict[str, torch.Tensor]
    config: BaseConfig | None
    source: str  # what messages call it
    arch: str = ""  # the registered name, for vitzoo checkpoints that have one
    tags: dict[str, str] = field(default_factory=dict)  # where the weights come from (license, hf_hub_id), if known

    def build(self) -> nn.Module:
        """The model :attr:`config` describes with these tensors loaded (in train mode, like a fresh model)."""
        if self.config is None:
            raise CheckpointFileError(
                f"{self.source} does not say its architecture (no config); build the model with "
                "vitzoo.create(name, pretrained=...) instead"
            )
        check_state_shapes(self.state, self.config, source=self.source)  # on "meta": a lying config allocates nothing
        model = models.build_model(self.config)  # float32: half-precision tensors load into it exactly
        kernel = self.state.get("patch_embed.proj.weight")
        if kernel is not None and kernel.dtype == torch.float64:
            model.double()  # before loading, so float64 tensors are not rounded through float32
        load_checked(model, self.state, source=self.source)
        model.arch_name = self.arch
        model.pretrained_tags.update(self.tags)
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
    raise CheckpointFileError(
        "unrecognised checkpoint folder: its config.json has none of 'library_name': 'vitzoo' (vitzoo), "
        f"'architecture' (timm), 'model_type' (transformers); keys: {sorted(config)[:10]}"
    )


def layout_config(files: CheckpointFiles, expected: str | None = None) -> dict[str, Any]:
    """A folder's ``config.json``; with ``expected``, raises ``ValueError`` unless the folder has that layout."""
    config = files.json("config.json")
    if config is None:
        files.require("config.json")  # raises: the Hub file is not cached and cannot be fetched, or there is none
    if expected is not None and (layout := folder_layout(config)) != expected:
        raise CheckpointFileError(
            f"{files.description} is a {layout} checkpoint, not a {expected} one; use vitzoo.load"
        )
    return config
