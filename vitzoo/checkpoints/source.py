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
from pathlib import Path

from torch import nn

from vitzoo.checkpoints.checkpoint import Checkpoint, folder_layout, layout_config, strip_wrapper_prefix
from vitzoo.checkpoints.convert_hf import hf_checkpoint
from vitzoo.checkpoints.convert_timm import timm_checkpoint
from vitzoo.checkpoints.hub import CheckpointFiles, checkpoint_files, is_hub_name
from vitzoo.checkpoints.io import (
    ARCH_KEY,
    CONFIG_KEY,
    read_metadata,
    read_state_dict,
    resolve_weights,
    weights_license,
)
from vitzoo.checkpoints.share import read_vitzoo_folder
from vitzoo.config import from_json
from vitzoo.errors import CheckpointFileError, InputNotFoundError, VitzooError, one_line

log = logging.getLogger(__name__)

__all__ = [
    "Checkpoint",
    "folder_layout",
    "from_hub",
    "layout_config",
    "read_checkpoint",
    "read_file",
    "read_folder",
    "strip_wrapper_prefix",
]


def read_folder(files: CheckpointFiles) -> Checkpoint:
    """The checkpoint in a folder or Hub repository, converted from its layout (see the module docstring)."""
    config = layout_config(files)
    layout = folder_layout(config)
    what = {"vitzoo": "library_name 'vitzoo'", "timm": f"architecture {config.get('architecture')!r}",
            "transformers": f"model_type {config.get('model_type')!r}"}[layout]  # fmt: skip
    log.info("%s: %s layout (config.json names %s)", files.description, layout, what)
    if layout == "vitzoo":
        return read_vitzoo_folder(files, config)
    convert = timm_checkpoint if layout == "timm" else hf_checkpoint
    try:
        return convert(files, config)
    except VitzooError:
        raise
    except NotImplementedError as exc:  # the converter names what it does not implement
        text = one_line(exc)
        raise CheckpointFileError(text if files.description in text else f"{files.description}: {text}") from exc
    except (TypeError, AttributeError, KeyError, ValueError) as exc:
        # A foreign config.json that the other library or the converter cannot take (an unknown argument, a block
        # or head of another kind, a missing field): one line naming the file and the original error; -v logs where.
        log.debug("converting %s failed", files.description, exc_info=True)
        raise CheckpointFileError(
            f"{files.description}: vitzoo cannot convert this {layout} checkpoint ({what} in config.json): "
            f"{type(exc).__name__}: {one_line(exc)}; vitzoo converts the models listed in docs/checkpoints.md"
        ) from exc


def read_file(source: str | os.PathLike) -> Checkpoint:
    """A weight file (or the name of one in ``weights/``): its tensors and, for a vitzoo file, its config."""
    path = resolve_weights(source)
    state = strip_wrapper_prefix(read_state_dict(path), str(path))
    meta = read_metadata(path) if path.suffix == ".safetensors" else {}
    config = from_json(meta[CONFIG_KEY], source=str(path)) if CONFIG_KEY in meta else None
    arch = meta.get(ARCH_KEY, "") if config is not None else ""
    log.info("loading %s (%s)", path, f"vitzoo checkpoint of {arch or 'an unnamed model'}" if config else
             "checkpoint without vitzoo metadata")  # fmt: skip
    license = weights_license(path, meta)
    tags = {"license": license} if license else {}
    return Checkpoint(state=state, config=config, source=str(path), arch=arch, tags=tags)


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
        raise InputNotFoundError(f"{source!r} is neither 'hf-hub:<org>/<name>' nor a checkpoint folder")
    return read_folder(checkpoint_files(source)).build()
