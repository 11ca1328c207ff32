"""Evaluation with multi-view averaging: top-1 / top-5, loss, confusion matrix (and its PNG).

A multi-view sample is ``(V, C, T, H, W)`` (``V`` = temporal clips x spatial crops, as the datasets of
:mod:`vitzoo.data` return with ``multi_view=True``). The model scores all ``B * V`` views of a batch in one
pass; the video's prediction is the mean over its ``V`` views of the **softmax probabilities**
(``average="prob"``, the default, as in SlowFast / MMAction2's ``average_clips="prob"``) or of the raw
**logits** (``average="logits"``). The reported loss is the negative log of the averaged probability of the
true class (``"prob"``), or the cross-entropy of the averaged logits (``"logits"``). Single-view batches
``(B, C, T, H, W)`` are a special case with ``V = 1``. Top-5 is capped at the number of classes.

Under ``torchrun`` each rank evaluates every ``world_size``-th sample (no padding, no duplicates) and the
counts are summed across ranks, so the numbers are exact and the same on every rank. The batches go through the
one model loop of :mod:`vitzoo.train.features` (eval mode, autocast, views folded into one pass).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from vitzoo.durable import write_text_atomic
from vitzoo.schema import ConfigError, check_choice
from vitzoo.train.config import EVAL_AVERAGES
from vitzoo.train.distributed import all_reduce, rank, world_size
from vitzoo.train.features import ShardSampler, eval_loader, model_device, model_outputs, unwrap
from vitzoo.train.metrics import confusion_matrix, topk_correct
from vitzoo.train.plots import plot_confusion_matrix

log = logging.getLogger(__name__)

__all__ = [  # ShardSampler and eval_loader live in train.features, with the model loop
    "EvalResult",
    "ShardSampler",
    "check_class_names",
    "eval_loader",
    "evaluate",
    "single_input_ndim",
    "write_report",
]


@dataclass
class EvalResult:
    """Accuracy (fractions in [0, 1]), mean loss and the confusion matrix of one evaluation."""

    top1: float
    top5: float
    loss: float
    num_samples: int
    num_views: int
    confusion: torch.Tensor  # (K, K) int64, rows: true class, columns: predicted class
    classes: list[str] | None = None

    @property
    def per_class_accuracy(self) -> list[float]:
        """Recall of every class (NaN for a class without samples)."""
        totals = self.confusion.sum(dim=1).to(torch.float64)
        hits = self.confusion.diagonal().to(torch.float64)
        return (hits / totals).tolist()  # 0/0 -> nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (NaN per-class values become null)."""
        per_class = [None if v != v else v for v in self.per_class_accuracy]
        return {
            "top1": self.top1,
            "top5": self.top5,
            "loss": self.loss,
            "num_samples": self.num_samples,
            "num_views": self.num_views,
            "classes": self.classes,
            "per_class_accuracy": per_class,
            "confusion_matrix": self.confusion.tolist(),
        }

    def __str__(self) -> str:
        return (
            f"top-1 {100 * self.top1:.2f}%  top-5 {100 * self.top5:.2f}%  loss {self.loss:.4f}  "
            f"({self.num_samples} videos x {self.num_views} views)"
        )


def check_class_names(model: nn.Module, classes: Sequence[str] | None) -> None:
    """:class:`ConfigError` when a vitzoo classifier's head and the class names given for its reports disagree."""
    num_classes = getattr(getattr(model, "cfg", None), "num_classes", None)
    if classes is not None and num_classes and len(classes) != num_classes:
        raise ConfigError(
            f"the model has num_classes={num_classes} but {len(classes)} class names were given "
            f"({list(classes)[:5]}{'...' if len(classes) > 5 else ''}); build the model with num_classes={len(classes)}"
        )


def single_input_ndim(model: nn.Module) -> int:
    """Dimensions of one batch the model takes, from ``model.input_shape``: 5 for clips ``(B, C, T, H, W)``, 4 for
    images ``(B, C, H, W)``."""
    shape = getattr(model, "input_shape", None)
    if shape is None:
        raise TypeError(f"{type(model).__name__} has no input_shape ((C, H, W) or (C, T, H, W)): evaluate needs it")
    return len(shape) + 1


def _counters(num_classes: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Zeroed (confusion matrix, top-5 hits, loss sum, sample count)."""
    ints = dict(dtype=torch.int64, device=device)
    return (
        torch.zeros(num_classes, num_classes, **ints),
        torch.zeros((), **ints),
        torch.zeros((), dtype=torch.float64, device=device),
        torch.zeros((), **ints),
    )


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Dataset | Iterable,
    *,
    batch_size: int = 8,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    amp: str = "none",
    average: str = "prob",
    classes: Sequence[str] | None = None,
    out_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> EvalResult:
    """Evaluate a classifier on a dataset of ``(views, label)`` samples.

    Args:
        model: the classifier (a ``DistributedDataParallel`` wrapper is unwrapped); put in eval mode for the
            call and restored afterwards.
        data: a map-style dataset (sharded over ranks when distributed) or any iterable of
            ``(clips, labels[, info])`` batches, used as given. Clips are ``(B, V, C, T, H, W)`` or ``(B, C, T, H, W)``.
        batch_size, num_workers: loader settings when ``data`` is a dataset.
        device: default: the device of the model's parameters.
        amp: ``"bf16"`` runs the model under bfloat16 autocast; scores are averaged in float32.
        average: ``"prob"`` or ``"logits"`` (see the module docstring).
        classes: class names for the report and the plot (default: ``data.classes`` when present).
        out_dir: if given, the main rank writes ``eval.json`` and ``confusion_matrix.png`` there.
        progress: show a progress bar (main rank only, on a terminal).
    """
    check_choice("average", average, EVAL_AVERAGES)
    module = unwrap(model)
    device = torch.device(device) if device is not None else model_device(module)
    this_rank, ranks = rank(), world_size()
    if classes is None:
        classes = getattr(data, "classes", None)
    check_class_names(module, classes)
    if isinstance(data, Dataset):
        data = eval_loader(data, batch_size=batch_size, num_workers=num_workers, rank=this_rank, world_size=ranks)
    num_classes = None
    conf = top5 = loss_sum = count = None
    num_views = 1
    options = dict(device=device, amp=amp, input_ndim=single_input_ndim(module), progress=progress and this_rank == 0)
    with closing(model_outputs(module, data, desc="eval", **options)) as batches:
        for logits, labels in batches:  # (B, V, K), (B,)
            b, num_views = logits.shape[:2]
            labels = labels.to(device)
            if average == "prob":
                probs = logits.softmax(dim=-1).mean(dim=1)  # (B, K)
                scores = probs
                loss = F.nll_loss(probs.clamp(min=1e-12).log(), labels, reduction="sum")
            else:
                scores = logits.mean(dim=1)  # (B, K)
                loss = F.cross_entropy(scores, labels, reduction="sum")
            if num_classes is None:
                num_classes = scores.shape[1]
                conf, top5, loss_sum, count = _counters(num_classes, device)
            conf += confusion_matrix(scores.argmax(dim=1), labels, num_classes)
            top5 += topk_correct(scores, labels, ks=(5,))[0]
            loss_sum += loss.double()
            count += b
    if num_classes is None:  # an empty shard (more ranks than samples) still joins the all-reduce
        num_classes = getattr(getattr(module, "cfg", None), "num_classes", None)
        if ranks == 1 or num_classes is None:
            raise ValueError("the evaluation data is empty")
        conf, top5, loss_sum, count = _counters(num_classes, device)
    for tensor in (conf, top5, loss_sum, count):
        all_reduce(tensor)
    n = int(count)
    if n == 0:
        raise ValueError("the evaluation data is empty")
    result = EvalResult(
        top1=float(conf.diagonal().sum()) / n,
        top5=float(top5) / n,
        loss=float(loss_sum) / n,
        num_samples=n,
        num_views=num_views,
        confusion=conf.cpu(),
        classes=list(classes) if classes is not None else None,
    )
    if out_dir is not None and this_rank == 0:
        write_report(result, out_dir)
    return result


def write_report(result: EvalResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``eval.json`` and ``confusion_matrix.png`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "eval.json"
    write_text_atomic(json_path, json.dumps(result.to_dict(), indent=1))
    title = f"top-1 {100 * result.top1:.1f}% ({result.num_samples} videos, {result.num_views} views)"
    png = plot_confusion_matrix(result.confusion, out_dir / "confusion_matrix.png", classes=result.classes, title=title)
    log.info("wrote %s and %s", json_path, png)
    return {"json": json_path, "png": png}
