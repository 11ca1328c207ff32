"""Weighted k-nearest-neighbour classification on frozen features.

Wu et al., 2018, "Unsupervised Feature Learning via Non-Parametric Instance Discrimination",
https://arxiv.org/abs/1805.01978, section 3.4; the same classifier DINO (``eval_knn.py``) and solo-learn use.
Features are L2-normalised; a query's ``k`` nearest training samples by cosine similarity ``s_i`` each vote
for their class with weight ``exp(s_i / T)``; the class with the largest summed weight wins. Defaults are
Wu et al.'s ``k = 200``, ``T = 0.07`` (DINO reports ``k = 20`` as its best, with the same ``T``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from vitzoo.ssl.features import split_features


@dataclass
class KNNResult:
    """Accuracy (fractions in [0, 1]) of a kNN classification."""

    top1: float
    top5: float
    num_samples: int
    k: int
    temperature: float


def knn_scores(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    query_features: torch.Tensor,
    *,
    k: int = 200,
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Summed vote weights ``(Q, num_classes)`` of each query's ``k`` nearest training features.

    ``k`` is capped at the number of training samples; queries are processed ``chunk_size`` at a time.
    """
    if not k >= 1 or not temperature > 0:
        raise ValueError(f"need k >= 1 and temperature > 0, got k={k}, temperature={temperature}")
    if train_features.shape[0] != train_labels.shape[0]:
        raise ValueError(f"{train_features.shape[0]} training features but {train_labels.shape[0]} labels")
    num_classes = int(train_labels.max()) + 1 if num_classes is None else num_classes
    train = F.normalize(train_features.float(), dim=1)  # (N, D)
    k = min(k, train.shape[0])
    out = []
    for query in F.normalize(query_features.float(), dim=1).split(chunk_size):  # (Qc, D)
        sim, idx = (query @ train.T).topk(k, dim=1)  # (Qc, k)
        votes = torch.zeros(query.shape[0], num_classes, device=query.device)
        out.append(votes.scatter_add_(1, train_labels[idx], (sim / temperature).exp()))  # (Qc, C)
    return torch.cat(out)


def knn_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    k: int = 200,
    temperature: float = 0.07,
    num_classes: int | None = None,
) -> KNNResult:
    """Top-1 / top-5 accuracy of the weighted kNN classifier on ``(test_features, test_labels)``."""
    if num_classes is None:
        num_classes = int(torch.cat([train_labels, test_labels]).max()) + 1
    scores = knn_scores(
        train_features, train_labels, test_features, k=k, temperature=temperature, num_classes=num_classes
    )  # (Q, C)
    ranked = scores.topk(min(5, num_classes), dim=1).indices  # (Q, 5)
    hits = ranked == test_labels[:, None]
    n = len(test_labels)
    return KNNResult(
        top1=hits[:, 0].float().mean().item(),
        top5=hits.any(dim=1).float().mean().item(),
        num_samples=n,
        k=min(k, len(train_labels)),
        temperature=temperature,
    )


def evaluate_knn(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset,
    *,
    k: int = 200,
    temperature: float = 0.07,
    **feature_options: Any,
) -> KNNResult:
    """kNN accuracy of ``model``'s frozen features: the training set is the memory bank, ``val_set`` the queries.

    ``feature_options``: those of :func:`~vitzoo.train.features.extract_features` (``batch_size`` 64, ``device``,
    ``num_workers``, ``amp``, ``progress``).
    """
    f = split_features(model, train_set, val_set, **feature_options)
    return knn_accuracy(f.train, f.train_labels, f.val, f.val_labels, k=k, temperature=temperature)
