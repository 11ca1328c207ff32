"""PNG plots of a run: training curves from ``metrics.jsonl`` and a confusion matrix (matplotlib, Agg backend)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _figure(**kwargs) -> Figure:
    """A figure drawn by the Agg canvas: no pyplot, no global backend switch, no window."""
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)
    return path


def plot_training_curves(records: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Three panels from metric records (see :mod:`vitzoo.train.metrics`): loss, learning rate, validation top-1/5.

    Loss and lr are plotted against the update step; validation accuracy against the step it was measured at.
    """
    train = [r for r in records if r.get("kind") == "train"]
    epochs = [r for r in records if r.get("kind") == "epoch"]
    val = [r for r in records if r.get("kind") == "val"]
    fig = _figure(figsize=(15, 4))
    ax_loss, ax_lr, ax_val = fig.subplots(1, 3)
    if train:
        ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], label="train (logged steps)", alpha=0.6)
        ax_lr.plot([r["step"] for r in train], [r["lr"] for r in train])
    if epochs:
        ax_loss.plot([r["step"] for r in epochs], [r["loss"] for r in epochs], "o-", label="train (epoch mean)")
    if val:
        ax_loss.plot([r["step"] for r in val], [r["loss"] for r in val], "s-", label="validation")
        ax_val.plot([r["step"] for r in val], [100 * r["top1"] for r in val], "o-", label="top-1")
        ax_val.plot([r["step"] for r in val], [100 * r["top5"] for r in val], "s--", label="top-5")
        ax_val.legend()
    ax_loss.set(title="loss", xlabel="update step")
    ax_loss.legend()
    ax_lr.set(title="learning rate", xlabel="update step")
    ax_val.set(title="validation accuracy (%)", xlabel="update step", ylim=(0, 105))
    for ax in (ax_loss, ax_lr, ax_val):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_confusion_matrix(
    matrix: torch.Tensor, path: str | os.PathLike, *, classes: Sequence[str] | None = None, title: str = ""
) -> Path:
    """A row-normalised confusion matrix (rows: true class, columns: predicted), counts written in the cells.

    Cell text is left out above 30 classes, tick labels above 60.
    """
    counts = matrix.to(torch.float64)
    num_classes = counts.shape[0]
    rates = counts / counts.sum(dim=1, keepdim=True).clamp(min=1)
    side = min(4 + 0.4 * num_classes, 30)
    fig = _figure(figsize=(side, side))
    ax = fig.subplots()
    image = ax.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if num_classes <= 60:
        names = list(classes) if classes is not None else [str(i) for i in range(num_classes)]
        ax.set_xticks(range(num_classes), names, rotation=90)
        ax.set_yticks(range(num_classes), names)
    if num_classes <= 30:
        for i in range(num_classes):
            for j in range(num_classes):
                colour = "white" if rates[i, j] > 0.5 else "black"
                ax.text(j, i, int(counts[i, j]), ha="center", va="center", color=colour, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title or "confusion matrix")
    fig.tight_layout()
    return _save(fig, path)
