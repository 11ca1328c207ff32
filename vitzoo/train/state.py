"""Where a run stands: :class:`TrainState` (passed to callbacks after every update) and :class:`FitResult` (what
a run leaves behind), both in terms of the task's monitored metric, whatever it is."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TrainState:
    """Progress of a run, passed to callbacks after every update.

    A callback may set ``stop = True`` to end training after this update (a checkpoint is written).
    """

    step: int = 0  # optimizer updates done
    epoch: int = 0  # index of the current epoch (= completed epochs)
    update_in_epoch: int = 0  # updates done in the current epoch
    updates_per_epoch: int = 0
    total_steps: int = 0
    loss: float = math.nan  # mean loss over the last log window, averaged over ranks (set every log_every updates)
    lr: float = math.nan  # learning rate of the last update's last group (the highest with layer decay)
    metrics: dict[str, float] = field(default_factory=dict)  # the task's metrics over the last log window
    monitor: str = "loss"  # task.monitor
    best_value: float | None = None  # best validated task.monitor so far (None: no validation yet)
    best_step: int = -1
    epoch_sums: dict[str, float] = field(default_factory=dict)  # sums over the epoch's updates: loss and metrics
    stop: bool = False


@dataclass
class FitResult:
    """What :func:`vitzoo.train.fit_task` leaves behind (:func:`vitzoo.train.fit` adds the evaluations)."""

    out_dir: Path
    step: int
    epoch: int
    completed: bool  # all epochs done (False after max_steps or an interrupt)
    interrupted: bool  # stopped by Ctrl-C / SIGTERM
    last_checkpoint: Path | None  # state file of the last checkpoint (its weights sit next to it)
    best_checkpoint: Path | None  # best.safetensors, when there was validation data
    monitor: str = "loss"  # the validation metric that chose best_checkpoint (task.monitor)
    best_value: float | None = None  # its best value
    best_step: int = -1  # the step of that value (-1: none yet)
    history: list[dict[str, float]] = field(default_factory=list)  # what task.validate returned, in order

    @property
    def validations(self) -> list[dict[str, float]]:
        """:attr:`history` (its earlier name)."""
        return self.history

    @property
    def best_top1(self) -> float | None:
        """``best_value`` when the monitor is ``top1`` (classification), else None (kept for earlier code)."""
        return self.best_value if self.monitor == "top1" else None


def is_better(value: float, best: float | None, *, higher_is_better: bool) -> bool:
    """True when ``value`` improves on ``best`` (always when there is no best yet; never for NaN)."""
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value > best if higher_is_better else value < best
