"""Progress output fit for logs: with stderr not a terminal, training draws no progress bar (no carriage-return
frames) and logs one line per log step and one per epoch instead."""

from __future__ import annotations

import json
import logging

from tests.helpers.training import RandomClips, nano_model
from vitzoo.train import fit


def _fit(out_dir, **options) -> None:
    """A nano model trained on 8 random clips, 2 per batch (4 updates per epoch)."""
    fit(nano_model(), RandomClips(8, (3, 4, 32, 32), 4), out_dir=out_dir, batch_size=2, plot=False, **options)


def test_without_a_terminal_each_log_step_and_epoch_is_one_line(tmp_path, capsys, caplog):
    # under pytest's capture, stderr is not a terminal: the engine behaves as in a log file
    with caplog.at_level(logging.INFO, logger="vitzoo.train.run_log"):
        _fit(tmp_path, epochs=2, log_every=2, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err and "it/s" not in err and "step/s" not in err  # no tqdm frames
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    lines = [r.getMessage() for r in caplog.records if r.name == "vitzoo.train.run_log"]
    assert len(lines) == len(records) == 4 + 2  # 4 updates per epoch, a line every 2; and 2 epoch ends
    train = [r for r in records if r["kind"] == "train"]
    assert [line for line in lines if "samples/s" in line] == [
        f"epoch {r['epoch']:.2f}/2 step {r['step']}: loss {r['loss']:.4g}, lr {r['lr']:.2e}, "
        f"{r['samples_per_s']:.1f} samples/s"
        for r in train
    ]
    assert lines[2].startswith("epoch 1/2 done at step 4: loss ")


def test_progress_false_logs_no_lines_and_every_window_is_timed_from_its_first_update(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="vitzoo.train.run_log"):
        _fit(tmp_path, epochs=1, log_every=1, progress=False)
    assert not [r for r in caplog.records if r.name == "vitzoo.train.run_log"]
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    rates = [r["samples_per_s"] for r in records if r["kind"] == "train"]
    assert len(rates) == 4 and max(rates) < 20 * min(rates)  # timed from after the first update, it was ~1000x
