"""Frozen features of a training (memory) split and a validation (query) split, computed once.

Used by the representation evaluations (:mod:`vitzoo.ssl.knn`, :mod:`vitzoo.ssl.linear_probe`,
:mod:`vitzoo.ssl.evaluate`). The features come from the one model loop of :mod:`vitzoo.train.features`
(:func:`extract_features`, re-exported here): the model must return features ``(B, D)`` (a backbone created
with ``num_classes=0``); samples are ``(input, label)`` pairs whose input is one image ``(C, H, W)`` or one
clip ``(C, T, H, W)``. Under ``torchrun`` each rank extracts its shard and every rank gets all features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from vitzoo.train.features import extract_features

__all__ = ["Features", "extract_features", "split_features"]


@dataclass
class Features:
    """Frozen features and labels of the memory / training split and of the query / validation split."""

    train: torch.Tensor  # (N, D)
    train_labels: torch.Tensor  # (N,)
    val: torch.Tensor  # (M, D)
    val_labels: torch.Tensor  # (M,)

    @property
    def num_classes(self) -> int:
        """Classes seen in either split."""
        return int(torch.cat([self.train_labels, self.val_labels]).max()) + 1


def split_features(model: nn.Module, train_set: Dataset, val_set: Dataset, **options: Any) -> Features:
    """Features of both splits (``options``: those of :func:`extract_features`: batch size, device, amp, ...)."""
    train, train_labels = extract_features(model, train_set, **options)
    val, val_labels = extract_features(model, val_set, **options)
    return Features(train, train_labels, val, val_labels)
