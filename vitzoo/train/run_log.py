"""Where a run's metric records go: the metric files on the main rank, and the console when no bar is drawn.

The records (``train`` every ``log_every`` updates, ``epoch``, ``val``; see :mod:`vitzoo.train.loggers`) go to
``metrics.jsonl`` (+ ``metrics.csv``, TensorBoard). On a terminal the epoch's progress bar shows the live loss;
when stderr is not a terminal (CI, ``nohup``, a cluster job's log) there is no bar
(:func:`vitzoo.progress.progress_bar`), so each ``train`` and ``epoch`` record is also logged as one line
(``logging``, INFO): a log gets one line per log step and per epoch, not carriage-return frames.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from vitzoo.progress import is_terminal
from vitzoo.train.config import TrainConfig
from vitzoo.train.loggers import JsonlLogger, Logger, make_loggers

log = logging.getLogger(__name__)

# keys of a record that its console line shows in its own words, not as "name value"
_FRAMED = ("kind", "step", "epoch", "time", "lr", "samples_per_s")


class RunLog:
    """The run's record writers (main rank only; other ranks write nothing) and its console lines."""

    def __init__(self, out_dir: Path, cfg: TrainConfig, *, is_main: bool, resume_step: int) -> None:
        self.loggers: list[Logger] = []
        self.jsonl: JsonlLogger | None = None
        if is_main:
            self.loggers = make_loggers(out_dir, csv=cfg.csv, tensorboard=cfg.tensorboard, resume_step=resume_step)
            self.jsonl = next(lg for lg in self.loggers if isinstance(lg, JsonlLogger))
        self.epochs = cfg.epochs
        self.lines = is_main and cfg.progress and not is_terminal()  # no bar is drawn: log lines instead

    def log(self, record: dict[str, Any]) -> None:
        """Write one record to every writer (and a console line for ``train`` and ``epoch`` records, see above)."""
        for logger in self.loggers:
            logger.log(record)
        if self.lines and record["kind"] in ("train", "epoch"):
            log.info("%s", self.line(record))

    def line(self, record: dict[str, Any]) -> str:
        """One line for a ``train`` or ``epoch`` record, e.g. ``epoch 1.50/3 step 30: loss 1.2345, lr 1.00e-04,
        96.0 samples/s``."""
        head = f"epoch {record['epoch']:.2f}/{self.epochs} step {record['step']}"
        if record["kind"] == "epoch":
            head = f"epoch {record['epoch']}/{self.epochs} done at step {record['step']}"
        parts = [f"{k} {v:.4g}" for k, v in record.items() if k not in _FRAMED and isinstance(v, int | float)]
        if "lr" in record:
            parts.append(f"lr {record['lr']:.2e}")
        if "samples_per_s" in record:
            parts.append(f"{record['samples_per_s']:.1f} samples/s")
        return f"{head}: {', '.join(parts)}"

    def records(self) -> list[dict[str, Any]]:
        """Every record of ``metrics.jsonl`` (none on other ranks)."""
        return self.jsonl.records() if self.jsonl is not None else []

    def close(self) -> None:
        """Close the writers."""
        for logger in self.loggers:
            logger.close()
