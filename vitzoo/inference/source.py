"""The model to predict with, its class names and its evaluation sampling, from a model or anything ``vitzoo.load``
reads.

Class names: ``labels=`` (or ``--labels FILE``) first, else the ``vitzoo.labels`` metadata of the weight file
(``vitzoo train`` and ``save_pretrained`` write it), else a folder's ``config.json`` ``labels``; without any, the
class indices are the names (one warning). Sampling: the ``vitzoo.preprocess`` metadata ``vitzoo train`` records
(the recipe's sampler, frame interval or target fps, evaluation clips and crops), else the recipe defaults (one
log line); clip length, frame size and mean / std are the model's own.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from vitzoo.api import load_classifier
from vitzoo.checkpoints.hub import checkpoint_files, is_hub_name
from vitzoo.checkpoints.io import LABELS_KEY, PREPROCESS_KEY, read_metadata, resolve_weights
from vitzoo.checkpoints.share import WEIGHTS_FILE
from vitzoo.data.preprocess import spec_from_settings
from vitzoo.data.recipe import DataSpec
from vitzoo.errors import InputNotFoundError
from vitzoo.schema import ConfigError

log = logging.getLogger(__name__)


@dataclass
class PredictModel:
    """A model ready to predict: in eval mode, with its class names (None: indices) and evaluation data spec."""

    model: nn.Module
    labels: list[str] | None
    spec: DataSpec
    source: str

    @property
    def num_classes(self) -> int:
        """Outputs of the head."""
        return int(self.model.cfg.num_classes)

    def label(self, index: int) -> str:
        """The name of class ``index`` (its number as text without names)."""
        return self.labels[index] if self.labels else str(index)


def read_labels(path: str | os.PathLike) -> list[str]:
    """Class names from a text file, one per line in head order (blank lines and ``#`` comments skipped)."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"no labels file {path}; give a text file with one class name per line")
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _metadata_of(source: str | os.PathLike) -> tuple[dict[str, str], dict]:
    """``(weights metadata, folder config.json)`` of a source (each empty when it has none)."""
    if is_hub_name(source) or Path(source).is_dir():
        files = checkpoint_files(source)
        config = files.json("config.json") or {}
        weights = files.get(WEIGHTS_FILE) if config.get("library_name") == "vitzoo" else None
        return (read_metadata(weights) if weights is not None else {}), config
    path = resolve_weights(source)
    return (read_metadata(path) if path.suffix == ".safetensors" else {}), {}


def open_model(
    model_or_source: nn.Module | str | os.PathLike,
    *,
    labels: Sequence[str] | str | os.PathLike | None = None,
    settings: dict | None = None,
) -> PredictModel:
    """A :class:`PredictModel` from a classifier or a source ``vitzoo.load`` reads (a shipped weight's name too).

    ``labels``: class names, or a file of them, overriding the recorded ones. ``settings``: evaluation sampling
    (:data:`vitzoo.data.preprocess.EVAL_FIELDS`) overriding the recorded ones. Raises :class:`ConfigError` for a
    model without a classifier head or class names that do not fit it.
    """
    meta: dict[str, str] = {}
    config: dict = {}
    if isinstance(model_or_source, nn.Module):
        model, source = model_or_source, type(model_or_source).__name__
    else:
        source = str(model_or_source)
        meta, config = _metadata_of(model_or_source)
        is_folder = is_hub_name(model_or_source) or Path(model_or_source).is_dir()
        model = load_classifier(
            model_or_source if is_folder else resolve_weights(model_or_source), command="vitzoo predict"
        )
    num_classes = getattr(getattr(model, "cfg", None), "num_classes", 0)
    if not num_classes or getattr(model, "input_shape", None) is None:
        raise ConfigError(f"{source} is not a vitzoo classifier (num_classes={num_classes}); predict needs a head")
    if isinstance(labels, str | os.PathLike):
        labels = read_labels(labels)
    elif labels is None and LABELS_KEY in meta:
        labels = json.loads(meta[LABELS_KEY])
    elif labels is None:
        labels = config.get("labels")
    if labels is not None and len(labels) != num_classes:
        raise ConfigError(
            f"{len(labels)} class names for a model with {num_classes} classes ({list(labels)[:5]}...); "
            f"give {num_classes} names, one per line, with --labels"
        )
    if labels is None:
        log.warning("%s records no class names: predictions name class indices (give names with --labels)", source)
    if settings is None and PREPROCESS_KEY in meta:
        settings = json.loads(meta[PREPROCESS_KEY])
    elif settings is None:
        log.info("%s records no evaluation sampling: using the recipe defaults", source)
    return PredictModel(model=model.eval(), labels=list(labels) if labels else None, spec=spec_from_settings(settings),
                        source=source)  # fmt: skip


__all__ = ["PredictModel", "open_model", "read_labels"]
