"""Metric writers: JSONL and CSV (columns for every task metric), TensorBoard events read back, resume truncation,
and the one-line error when TensorBoard is asked for but not installed."""

from __future__ import annotations

import csv
import importlib.util

import pytest

from tests.helpers.training import IMAGE_SHAPE, RandomViews, label_free_task
from vitzoo.train import ConfigError, fit_task
from vitzoo.train.loggers import CsvLogger, JsonlLogger, make_loggers


def test_csv_grows_a_column_for_every_new_key_and_truncates_on_resume(tmp_path):
    logger = CsvLogger(tmp_path)
    logger.log({"kind": "train", "step": 1, "loss": 2.0})
    logger.log({"kind": "train", "step": 2, "loss": 1.5, "feature_std": 0.3})
    logger.log({"kind": "val", "step": 2, "top1": 0.5})
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert list(rows[0]) == ["kind", "step", "loss", "top1", "feature_std"]  # known columns first
    assert [r["feature_std"] for r in rows] == ["", "0.3", ""] and rows[2]["top1"] == "0.5"
    resumed = CsvLogger(tmp_path, resume_step=1)
    resumed.log({"kind": "train", "step": 2, "loss": 1.4})
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [(r["step"], r["loss"]) for r in rows] == [("1", "2.0"), ("2", "1.4")]


def test_jsonl_resume_drops_later_records_and_a_fresh_run_starts_empty(tmp_path):
    logger = JsonlLogger(tmp_path)
    for step in (1, 2, 3):
        logger.log({"kind": "train", "step": step})
    assert [r["step"] for r in JsonlLogger(tmp_path, resume_step=2).records()] == [1, 2]
    assert JsonlLogger(tmp_path, resume_step=0).records() == []


def test_tensorboard_events_hold_the_task_metrics(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    task = label_free_task()
    fit_task(
        task,
        RandomViews(4, IMAGE_SHAPE),
        val_data=RandomViews(2, IMAGE_SHAPE, seed=1),
        out_dir=tmp_path,
        epochs=1,
        batch_size=2,
        log_every=1,
        tensorboard=True,
        csv=True,
        progress=False,
        plot=False,
    )
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/feature_std", "epoch/feature_std", "val/val_distance"} <= tags
    assert [e.step for e in events.Scalars("train/feature_std")] == [1, 2]
    header = next(csv.reader((tmp_path / "metrics.csv").open()))
    assert "feature_std" in header and "val_distance" in header


def test_tensorboard_missing_is_one_clear_error(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'vitzoo\[tensorboard\]'"):
        make_loggers(tmp_path, tensorboard=True)
    task = label_free_task()
    with pytest.raises(ConfigError, match="tensorboard"):  # before any training
        fit_task(task, RandomViews(4, IMAGE_SHAPE), out_dir=tmp_path / "run", tensorboard=True, batch_size=2)
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("writer", [JsonlLogger, CsvLogger])
def test_a_record_logged_again_replaces_the_first(tmp_path, writer):
    """Records are keyed by (kind, step): a resumed run that repeats an epoch end leaves one record of each."""
    logger = writer(tmp_path)
    for record in (
        {"kind": "train", "step": 1, "loss": 2.0},
        {"kind": "epoch", "step": 1, "loss": 1.9},
        {"kind": "val", "step": 1, "top1": 0.5},
    ):
        logger.log(record)
    again = writer(tmp_path, resume_step=1)  # resuming from a checkpoint written before that epoch end
    again.log({"kind": "epoch", "step": 1, "loss": 1.8})
    again.log({"kind": "val", "step": 1, "top1": 0.75})
    again.log({"kind": "train", "step": 2, "loss": 1.5})
    if writer is JsonlLogger:
        rows = [(r["kind"], r["step"], r.get("loss", r.get("top1"))) for r in again.records()]
    else:
        rows = [(r["kind"], int(r["step"]), float(r["loss"] or r["top1"])) for r in csv.DictReader(again.path.open())]
    assert rows == [("train", 1, 2.0), ("epoch", 1, 1.8), ("val", 1, 0.75), ("train", 2, 1.5)]
