"""The public API: ``create``, ``list_models``, ``save``, ``load``, ``save_pretrained``, ``push_to_hub``."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from torch import nn

from vitzoo import models
from vitzoo.checkpoints.adopt import adopt_facts
from vitzoo.checkpoints.hub import is_hub_name
from vitzoo.checkpoints.io import (
    ARCH_KEY,
    CONFIG_KEY,
    model_metadata,
    read_metadata,
    read_state_dict,
    save_state_dict,
    weights_license,
)
from vitzoo.checkpoints.load import check_file_shapes, load_checked, load_pretrained
from vitzoo.checkpoints.share import push_to_hub, save_pretrained
from vitzoo.checkpoints.source import read_checkpoint
from vitzoo.config import RENAMED_FIELDS, from_json, replace
from vitzoo.errors import CheckpointFileError
from vitzoo.models.features import FeatureBackbone
from vitzoo.models.masked_autoencoder import MaskedAutoencoder
from vitzoo.registry import MODELS
from vitzoo.schema import ConfigError

log = logging.getLogger(__name__)

__all__ = [
    "create",
    "list_models",
    "load",
    "load_classifier",
    "load_encoder",
    "model_config",
    "push_to_hub",
    "save",
    "save_pretrained",
]


def list_models(pattern: str = "*", *, include_aliases: bool = False) -> list[str]:
    """Sorted registered model names matching a glob ``pattern`` (e.g. ``"vivit_*"``)."""
    return MODELS.names(pattern, include_aliases=include_aliases)


def model_config(name: str, **overrides):
    """The config registered as ``name`` with ``overrides`` applied (unknown names raise)."""
    return replace(MODELS.get(name)(), **overrides)


def create(
    name: str,
    *,
    pretrained: str | os.PathLike | None = None,
    tubelet_init: str = "central",
    features_only: bool = False,
    out_indices: int | list[int] | tuple[int, ...] = 4,
    **overrides,
) -> nn.Module:
    """Build the registered model ``name``, optionally initialised from ``pretrained``.

    ``overrides`` are config fields (``num_classes``, ``img_size``, ``num_frames``, ``drop_path_rate``,
    ``temporal_init``, ...); an unknown field raises ``TypeError`` with close matches. ``pretrained`` is
    a local weight file (vitzoo's or timm's layout), the name of a file in ``weights/``, a checkpoint folder
    (vitzoo's ``save_pretrained``, timm's or transformers' layout) or ``"hf-hub:<org>/<name>[@<revision>]"``
    (downloaded into, or read offline from, the Hugging Face cache). A video model given an image ViT checkpoint
    is initialised from it (``tubelet_init``: central, average, repeat). When the checkpoint says its config, the
    model takes the facts its weights were trained with (activation, norm eps, pre-norm, LayerScale, mean/std,
    and for the same family its prefix tokens and pooling; see :mod:`vitzoo.checkpoints.adopt`) unless
    ``overrides`` set them.

    ``features_only=True`` returns a backbone instead (timm's ``features_only``): a
    :class:`~vitzoo.models.features.FeatureBackbone` whose ``forward`` yields the taps ``out_indices`` (the last
    ``n`` for an int, those listed otherwise) as ``(B, C, H, W)`` (image) or ``(B, C, T, H, W)`` (video) maps,
    described by its ``feature_info``.
    """
    canonical = MODELS.resolve(name)
    cfg = model_config(canonical, **overrides)
    checkpoint = None
    if pretrained is not None:
        checkpoint = read_checkpoint(pretrained)
        explicit = {RENAMED_FIELDS.get(k, k) for k in overrides}
        cfg = adopt_facts(cfg, checkpoint.config, explicit=explicit, source=checkpoint.source)
    try:
        model = models.build_model(cfg)
    except ConfigError as exc:
        if checkpoint is None:
            raise
        raise ConfigError(f"{canonical} cannot take what {checkpoint.source} was trained with: {exc}") from None
    model.arch_name = canonical
    if checkpoint is not None:
        load_pretrained(model, checkpoint, tubelet_init=tubelet_init, overridden=explicit)
        model.pretrained_tags.update(checkpoint.tags)
        if is_hub_name(pretrained):
            model.pretrained_tags["hf_hub_id"] = str(pretrained).removeprefix("hf-hub:").split("@")[0]
    return FeatureBackbone(model, out_indices) if features_only else model


def save(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write ``model``'s weights, architecture name and full config to a ``.safetensors`` file."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"vitzoo.save writes safetensors; got {path.name!r} (use a .safetensors suffix)")
    return save_state_dict(model.state_dict(), path, metadata=model_metadata(model))


def load(path: str | os.PathLike) -> nn.Module:
    """Rebuild a model from a checkpoint that says its architecture, weights loaded, in eval mode.

    ``path`` is a file written by :func:`save`, a folder written by :func:`save_pretrained`, a timm or transformers
    checkpoint folder (converted, exactly: see ``vitzoo.convert``), or ``"hf-hub:<org>/<name>[@<revision>]"`` for
    any of those on the Hugging Face Hub (downloaded into, or read offline from, its cache). Before anything is
    built, the config a vitzoo file claims is checked against the tensor shapes in its header
    (:func:`vitzoo.checkpoints.check_file_shapes`): a file from someone else cannot make vitzoo allocate a
    model its tensors do not describe.
    """
    if is_hub_name(path) or Path(path).is_dir():
        return read_checkpoint(path).build().eval()
    meta = read_metadata(path)
    if CONFIG_KEY not in meta:
        raise CheckpointFileError(
            f"{path} has no vitzoo config in its metadata; build the model with "
            "vitzoo.create(name, pretrained=path) instead"
        )
    cfg = from_json(meta[CONFIG_KEY], source=str(path))
    check_file_shapes(path, cfg)
    model = models.build_model(cfg)
    model.arch_name = meta.get(ARCH_KEY, "")
    load_checked(model, read_state_dict(path), source=str(path))
    license = weights_license(Path(path), meta)
    model.pretrained_tags.update({"license": license} if license else {})
    return model.eval()


def load_classifier(path: str | os.PathLike, *, command: str) -> nn.Module:
    """:func:`load`, for a ``command`` that needs a classifier (``"vitzoo eval"``, ``"vitzoo predict"``, ...).

    A masked-autoencoder pre-training checkpoint (transformers' ``VideoMAEForPreTraining``: an encoder and a pixel
    decoder, no classifier head) is refused in one line (:class:`CheckpointFileError`) naming what to do with it.
    """
    model = load(path)
    if isinstance(model, MaskedAutoencoder):
        raise CheckpointFileError(
            f"{path} is a masked-autoencoder pre-training checkpoint (encoder and pixel decoder, no classifier); "
            f"{command} needs a classifier: fine-tune it first (vitzoo train --set model.pretrained={path}) or "
            f"probe its frozen encoder (vitzoo linear-probe --checkpoint {path})"
        )
    return model


def load_encoder(path: str | os.PathLike) -> nn.Module:
    """:func:`load`, except that a masked-autoencoder pre-training checkpoint gives its encoder (the decoder is
    dropped, with a log line): the model whose features frozen-feature evaluation reads."""
    model = load(path)
    if isinstance(model, MaskedAutoencoder):
        log.info("%s is a masked-autoencoder pre-training checkpoint: its encoder is used, the decoder dropped", path)
        return model.encoder.eval()
    return model
