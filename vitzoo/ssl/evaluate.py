"""Frozen-feature evaluation of a checkpoint on a recipe's data: what ``vitzoo knn`` and ``vitzoo linear-probe`` run.

The encoder is a checkpoint's model (``vitzoo.load``; a classifier's head is removed, so its pooled pre-logit
features are evaluated) or, for a baseline, the recipe's model at random initialisation. Its features are
computed once for the recipe's training split (the kNN memory bank, the probe's training set) and validation
split (the queries), one deterministic clip with a centre crop each (:func:`vitzoo.ssl.data.knn_pair`), then

* weighted kNN (:func:`vitzoo.ssl.knn.knn_accuracy`: ``k`` neighbours, vote weights ``exp(s / T)``), and/or
* a linear probe (:func:`vitzoo.ssl.linear_probe.linear_probe`: a linear classifier on standardised features).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vitzoo.durable import write_text_atomic
from vitzoo.ssl.data import knn_pair
from vitzoo.ssl.features import Features, split_features
from vitzoo.ssl.knn import KNNResult, knn_accuracy
from vitzoo.ssl.linear_probe import LinearProbeResult, linear_probe
from vitzoo.train.config import ConfigError, RunConfig

log = logging.getLogger(__name__)


def encoder(run: RunConfig, *, checkpoint: str | os.PathLike | None = None, random_init: bool = False) -> nn.Module:
    """The encoder to evaluate: ``checkpoint``'s model without its head, or ``run.model.name`` at random init
    (seeded with ``train.seed``; ``model.pretrained`` ignored); in eval mode."""
    from vitzoo.api import create, load_encoder

    if random_init == (checkpoint is not None):
        raise ValueError("give either a checkpoint or random_init=True")
    if random_init:
        torch.manual_seed(run.train.seed)
        model = create(run.model.name, num_classes=0, **run.model.options)
    else:
        model = load_encoder(checkpoint)
        if model.cfg.num_classes:
            log.info("%s is a classifier: its head is removed, its pooled features are evaluated", checkpoint)
            model.reset_classifier(0)
    return model.eval()


def frozen_features(run: RunConfig, model: nn.Module, *, device: str | torch.device | None = None) -> Features:
    """Features of the recipe's training and validation splits (see the module docstring)."""
    if run.data.val is None:
        raise ConfigError("frozen-feature evaluation needs data.val (the queries); set one with --set data.val=...")
    from vitzoo.train.distributed import default_device, init_distributed

    device = torch.device(device) if device is not None else default_device(init_distributed(), run.train.device)
    bank, queries = knn_pair(run.data, model)
    opts = dict(
        batch_size=run.train.eval_batch_size or run.train.batch_size,
        device=device,
        num_workers=run.train.num_workers,
        amp=run.train.amp,
        progress=run.train.progress,
    )
    return split_features(model.to(device), bank, queries, **opts)


def knn(features: Features, *, k: int = 200, temperature: float = 0.07) -> KNNResult:
    """Weighted kNN top-1 / top-5 of the validation features against the training features."""
    return knn_accuracy(
        features.train, features.train_labels, features.val, features.val_labels, k=k, temperature=temperature,
        num_classes=features.num_classes,
    )  # fmt: skip


def probe(features: Features, **options: Any) -> LinearProbeResult:
    """A linear probe trained on the training features, scored on the validation features (``options``: those of
    :func:`~vitzoo.ssl.linear_probe.linear_probe`)."""
    return linear_probe(
        features.train, features.train_labels, features.val, features.val_labels, num_classes=features.num_classes,
        **options,
    )  # fmt: skip


def write_json(record: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``record`` as JSON, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, json.dumps(record, indent=1) + "\n")
