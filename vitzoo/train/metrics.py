"""Classification metrics: top-k hits and the confusion matrix.

Metric records and their writers are in :mod:`vitzoo.train.loggers`; ``read_jsonl`` and ``MetricsLogger`` (the
JSONL writer, :class:`~vitzoo.train.loggers.JsonlLogger`) are re-exported here under their old names.
"""

from __future__ import annotations

import torch

from vitzoo.train.loggers import JsonlLogger, read_jsonl

MetricsLogger = JsonlLogger  # the old name of the JSONL writer

__all__ = ["MetricsLogger", "confusion_matrix", "read_jsonl", "topk_correct"]


def topk_correct(scores: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> list[int]:
    """Number of samples whose label is among the top-``k`` scores, for each ``k`` (capped at the class count).

    ``scores`` is ``(B, K)``, ``labels`` ``(B,)``.
    """
    kmax = min(max(ks), scores.shape[1])
    top = scores.topk(kmax, dim=1).indices  # (B, kmax)
    hits = top == labels[:, None]  # (B, kmax)
    return [int(hits[:, : min(k, kmax)].any(dim=1).sum()) for k in ks]


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(K, K)`` int64 counts: row = true class, column = predicted class."""
    flat = labels.to(torch.int64) * num_classes + predictions.to(torch.int64)
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
