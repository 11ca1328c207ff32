"""Where the engine's metric records go: one small interface, three writers (JSONL, CSV, TensorBoard).

A record is a flat dict of numbers and strings with a ``kind`` and a ``step``:

* ``"train"``: every ``log_every`` updates: ``step, epoch, loss, lr, samples_per_s, time`` and the task's
  metrics (``StepOutput.metrics``), each averaged over the updates of the window and over the processes;
* ``"epoch"``: at each epoch end: ``step, epoch, time``, the epoch mean of the loss and of every task metric;
* ``"val"``: after each validation: ``step, epoch, time`` and everything ``task.validate`` returned.

``epoch`` counts completed epochs as a float (``2.5`` is half way through the third); ``samples_per_s`` counts
samples (``StepOutput.batch_size``: clips or images, not views) per second over all processes.

Every writer flushes as it goes, so a run can be watched while it trains (``tail -f metrics.jsonl``,
``tensorboard --logdir <run>/tensorboard``). A resumed run passes the checkpoint's step as ``resume_step``:
records after it (written by the interrupted process) are dropped first; a fresh run passes 0 (it starts from
empty files); None keeps and appends to what is there.

The JSONL and CSV logs are idempotent: a record is identified by its ``(kind, step)``, and logging a record whose
key is already in the file replaces the old one (the file is rewritten atomically, which only happens when a
resumed run repeats work the interrupted one had logged, e.g. an epoch end after a kill just before its
checkpoint). So however a run is interrupted and resumed, each ``(kind, step)`` appears once. TensorBoard
events are hidden from ``resume_step + 1`` on (``purge_step``); an epoch-end point repeated at the resumed step
itself can appear twice there.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import logging
import os
from pathlib import Path
from typing import Any, Protocol

from vitzoo.durable import write_text_atomic
from vitzoo.schema import ConfigError

log = logging.getLogger(__name__)

# columns of metrics.csv first (in this order), then any other key in the order it first appears
CSV_COLUMNS = ("kind", "step", "epoch", "loss", "lr", "samples_per_s", "top1", "top5", "num_samples", "time")
_NOT_SCALARS = ("kind", "step", "epoch", "time")


class Logger(Protocol):
    """What the engine writes metric records to (see the module docstring)."""

    def log(self, record: dict[str, Any]) -> None:
        """Write one record."""

    def close(self) -> None:
        """Flush and release files."""


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All records of a JSONL file (an unfinished last line, from a crash, is ignored)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _replace_text(path: Path, text: str) -> None:
    write_text_atomic(path, text)


def record_key(record: dict[str, Any]) -> tuple[str, int]:
    """What identifies a record: ``(kind, step)`` (the CSV gives strings: ``"3"`` and ``"3.0"`` are step 3)."""
    return str(record.get("kind", "")), int(float(record.get("step") or 0))


class JsonlLogger:
    """Append records to ``<directory>/metrics.jsonl``, one JSON object per line, flushed per record; a record whose
    ``(kind, step)`` is already there replaces it (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike, *, resume_step: int | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "metrics.jsonl"
        if resume_step is not None:
            self.truncate_after(resume_step)
        self.keys = {record_key(r) for r in read_jsonl(self.path)}

    def truncate_after(self, step: int) -> None:
        """Drop records with ``step > step`` (left by an interrupted run), atomically."""
        kept = [r for r in read_jsonl(self.path) if r.get("step", 0) <= step]
        self._rewrite(kept)

    def _rewrite(self, records: list[dict[str, Any]]) -> None:
        _replace_text(self.path, "".join(json.dumps(r) + "\n" for r in records))

    def log(self, record: dict[str, Any]) -> None:
        """Append one record (or replace the one with the same ``(kind, step)``)."""
        key = record_key(record)
        if key in self.keys:
            log.debug("metrics.jsonl: replacing the %s record of step %d", *key)
            self._rewrite([r for r in read_jsonl(self.path) if record_key(r) != key] + [record])
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.keys.add(key)

    def records(self) -> list[dict[str, Any]]:
        """Everything logged so far."""
        return read_jsonl(self.path)

    def close(self) -> None:
        """Nothing to release (every record is written as it comes)."""


class CsvLogger:
    """``<directory>/metrics.csv``: one row per record; the header grows (the file is rewritten) when a record
    brings a new key, so every task metric gets a column."""

    def __init__(self, directory: str | os.PathLike, *, resume_step: int | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "metrics.csv"
        rows = []
        if self.path.is_file():
            with open(self.path, newline="") as f:
                rows = list(csv.DictReader(f))
            if resume_step is not None:
                rows = [r for r in rows if r.get("step") and int(float(r["step"])) <= resume_step]
        self.columns: list[str] = []
        self._rewrite(rows)
        self.keys = {record_key(r) for r in rows}

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self._add_columns(row)
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=self.columns)
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(self.path, text.getvalue())

    def _add_columns(self, record: dict[str, Any]) -> bool:
        new = [k for k in record if k not in self.columns]
        if new:
            merged = [c for c in CSV_COLUMNS if c in self.columns or c in record]
            self.columns = merged + [c for c in (*self.columns, *new) if c not in merged]
        return bool(new)

    def log(self, record: dict[str, Any]) -> None:
        """Append one row (rewriting the file with a wider header when the record has a new key, or without the
        row of the same ``(kind, step)``)."""
        key = record_key(record)
        if self._add_columns(record) or key in self.keys:
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if record_key(r) != key]
            self._rewrite([*rows, record])
        else:
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.columns).writerow(record)
        self.keys.add(key)

    def close(self) -> None:
        """Nothing to release (every row is written as it comes)."""


class TensorBoardLogger:
    """Scalars of every record under ``<kind>/<name>`` (``train/loss``, ``val/top1``, ``epoch/loss``) at its step,
    in ``<directory>/tensorboard`` (``torch.utils.tensorboard``; needs the ``tensorboard`` package)."""

    def __init__(self, directory: str | os.PathLike, *, resume_step: int | None = None, flush_secs: int = 10) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.path = Path(directory) / "tensorboard"
        # purge_step: events at or after it, written by an interrupted process, are hidden on resume
        purge = resume_step + 1 if resume_step is not None else None
        self.writer = SummaryWriter(log_dir=str(self.path), purge_step=purge, flush_secs=flush_secs)

    def log(self, record: dict[str, Any]) -> None:
        """Add every numeric value of the record as a scalar; flush after epoch and validation records."""
        kind, step = record.get("kind", "train"), int(record["step"])
        for key, value in record.items():
            if key not in _NOT_SCALARS and isinstance(value, int | float) and not isinstance(value, bool):
                self.writer.add_scalar(f"{kind}/{key}", value, global_step=step, walltime=record.get("time"))
        if kind != "train":
            self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()


def require_tensorboard() -> None:
    """Raise :class:`ConfigError` (one line, with the fix) when the ``tensorboard`` package is missing."""
    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(
            "train.tensorboard is true but the tensorboard package is not installed: "
            "pip install 'vitzoo[tensorboard]' (or set train.tensorboard=false)"
        )


def make_loggers(
    directory: str | os.PathLike, *, csv: bool = False, tensorboard: bool = False, resume_step: int | None = None
) -> list[Logger]:
    """The writers a run asked for: JSONL always (first), then CSV and TensorBoard when switched on."""
    loggers: list[Logger] = [JsonlLogger(directory, resume_step=resume_step)]
    if csv:
        loggers.append(CsvLogger(directory, resume_step=resume_step))
    if tensorboard:
        loggers.append(TensorBoardLogger(directory, resume_step=resume_step))
    return loggers
