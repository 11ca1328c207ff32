"""PNG plots of a run: training curves from its metric records and a confusion matrix (matplotlib, Agg backend)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vitzoo.durable import write_atomic


def _figure(**kwargs) -> Figure:
    """A figure drawn by the Agg canvas: no pyplot, no global backend switch, no window."""
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, lambda f: fig.savefig(f, dpi=120, format=path.suffix.lstrip(".") or None))


VAL_NOT_PLOTTED = ("kind", "step", "epoch", "time", "loss", "num_samples")
# throughput is not a training curve (clips_per_s: its name in logs of older runs)
TRAIN_NOT_PLOTTED = ("kind", "step", "epoch", "time", "loss", "lr", "samples_per_s", "clips_per_s")


def plot_training_curves(records: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Panels from metric records (see :mod:`vitzoo.train.loggers`): loss, learning rate, validation metrics, and
    the task's training metrics (epoch means) when it logs any.

    Every value is plotted against the update step it was measured at; the validation panel shows every value
    ``task.validate`` returned (``top1``/``top5`` of classification) but the loss (in the first panel).
    """
    train = [r for r in records if r.get("kind") == "train"]
    epochs = [r for r in records if r.get("kind") == "epoch"]
    val = [r for r in records if r.get("kind") == "val"]
    val_keys = _keys(val, VAL_NOT_PLOTTED)
    train_keys = _keys(epochs, TRAIN_NOT_PLOTTED)
    fig = _figure(figsize=(5 * (3 + bool(train_keys)), 4))
    axes = fig.subplots(1, 3 + bool(train_keys))
    ax_loss, ax_lr, ax_val = axes[:3]
    if train:
        ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], label="train (logged steps)", alpha=0.6)
        ax_lr.plot([r["step"] for r in train], [r["lr"] for r in train])
    if epochs:
        ax_loss.plot([r["step"] for r in epochs], [r["loss"] for r in epochs], "o-", label="train (epoch mean)")
    if any("loss" in r for r in val):
        points = [r for r in val if "loss" in r]
        ax_loss.plot([r["step"] for r in points], [r["loss"] for r in points], "s-", label="validation")
    _lines(ax_val, val, val_keys)
    ax_loss.set(title="loss", xlabel="update step")
    ax_loss.legend()
    ax_lr.set(title="learning rate", xlabel="update step")
    ax_val.set(title="validation", xlabel="update step")
    if train_keys:
        _lines(axes[3], epochs, train_keys)
        axes[3].set(title="training metrics (epoch mean)", xlabel="update step")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _keys(records: Sequence[dict[str, Any]], excluded: Sequence[str]) -> list[str]:
    """Numeric keys of ``records`` but ``excluded``, in order of first appearance."""
    keys: dict[str, None] = {}
    for r in records:
        for k, v in r.items():
            if k not in excluded and isinstance(v, int | float) and not isinstance(v, bool):
                keys[k] = None
    return list(keys)


def _lines(ax, records: Sequence[dict[str, Any]], keys: Sequence[str]) -> None:
    """One line per key (points where the key is present), with a legend."""
    for key in keys:
        points = [r for r in records if key in r]
        ax.plot([r["step"] for r in points], [r[key] for r in points], "o-", label=key)
    if keys:
        ax.legend()


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
