"""Metric logging (one JSON object per line, optional CSV) and classification metrics.

``metrics.jsonl`` holds one record per line, each with a ``kind``:

* ``"train"``: every ``log_every`` updates: ``step, epoch, loss, lr, clips_per_s, time``;
* ``"epoch"``: at each epoch end: ``step, epoch, loss`` (mean over the epoch's updates), ``time``;
* ``"val"``: after each evaluation: ``step, epoch, top1, top5, loss, num_samples``.

``epoch`` counts completed epochs as a float (``2.5`` is half way through the third). When a run is
resumed, records written after its checkpoint (by the interrupted process) are dropped first, so the
file never holds the same step twice.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import torch

CSV_COLUMNS = ("kind", "step", "epoch", "loss", "lr", "clips_per_s", "top1", "top5", "num_samples", "time")


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


class MetricsLogger:
    """Append records to ``metrics.jsonl`` (and ``metrics.csv`` with ``csv=True``) in ``directory``.

    Only the main process should own one. Each record is flushed as it is written.
    """

    def __init__(self, directory: str | os.PathLike, *, csv: bool = False) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = self.directory / "metrics.jsonl"
        self.csv_path = self.directory / "metrics.csv" if csv else None

    def truncate_after(self, step: int) -> None:
        """Drop records with ``step > step`` (left by an interrupted run) and rewrite the files atomically."""
        kept = [r for r in read_jsonl(self.jsonl_path) if r.get("step", 0) <= step]
        self._rewrite(kept)

    def _rewrite(self, records: list[dict[str, Any]]) -> None:
        tmp = self.jsonl_path.with_name(f".{self.jsonl_path.name}.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
        os.replace(tmp, self.jsonl_path)
        if self.csv_path is not None:
            tmp = self.csv_path.with_name(f".{self.csv_path.name}.tmp")
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(records)
            os.replace(tmp, self.csv_path)

    def log(self, record: dict[str, Any]) -> None:
        """Append one record (a flat dict of numbers and strings, with a ``kind``)."""
        with open(self.jsonl_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.csv_path is not None:
            new = not self.csv_path.is_file()
            with open(self.csv_path, "a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
                if new:
                    writer.writeheader()
                writer.writerow(record)

    def records(self) -> list[dict[str, Any]]:
        """Everything logged so far."""
        return read_jsonl(self.jsonl_path)


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
