"""Fault injection on whole runs: a run killed at each point of an epoch end, or failing on a full disk, resumes to
bitwise the same weights, ``best.safetensors`` and metric records as an uninterrupted run, each ``(kind, step)``
record once; a real process killed in the middle of a checkpoint write (after a Ctrl-C with DataLoader workers,
announced once) leaves a directory the next run resumes from, its lock free and its leftovers removed.

A kill is simulated in-process by :class:`Killed` (a ``BaseException``): raised right after the chosen write,
and by every later write before it writes anything, as a process killed there would write nothing more (no
emergency checkpoint, no plot). The subprocess test kills for real (``os._exit`` in the middle of a write).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import vitzoo.durable
import vitzoo.train.engine
from tests.helpers import REPO_ROOT
from tests.helpers.training import IMAGE_SHAPE, RandomViews, disk_full_after, label_free_task
from vitzoo.train import fit_task
from vitzoo.train.checkpointing import CheckpointManager
from vitzoo.train.errors import CheckpointWriteError
from vitzoo.train.loggers import JsonlLogger

# 4 samples / batch 2 = 2 updates, one epoch; a checkpoint every 2 updates falls on the epoch's last update, so the
# epoch end writes its checkpoint at a step that already has one
OPTIONS = dict(epochs=1, batch_size=2, lr=1e-3, warmup_epochs=0, ema_decay=0.9, save_every=2, log_every=1)
QUIET = dict(progress=False, plot=False)
KILL_WORKER = "tests.train.kill_worker"  # run as a module: it imports tests.helpers


def _task():
    return label_free_task(drop_path_rate=0.1)  # stochastic depth: the RNG state matters on resume


def _fit(out: Path, **options):
    task = _task()
    options = {**OPTIONS, **QUIET, **options}
    fit_task(task, RandomViews(4, IMAGE_SHAPE), val_data=RandomViews(2, IMAGE_SHAPE, seed=1), out_dir=out, **options)
    return task


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _keyed(out: Path) -> dict[tuple, dict]:
    """``{(kind, step): record without its time}``; fails on a repeated key."""
    records = _records(out)
    timing = ("time", "samples_per_s")
    keyed = {(r["kind"], r["step"]): {k: v for k, v in r.items() if k not in timing} for r in records}
    assert len(keyed) == len(records), f"repeated records: {[(r['kind'], r['step']) for r in records]}"
    return keyed


def _assert_same_run(out: Path, task, reference) -> None:
    ref_task, ref_out = reference
    state, ref_state = task.state_dict(), ref_task.state_dict()
    assert all(torch.equal(v, ref_state[k]) for k, v in state.items()), "weights differ from the uninterrupted run"
    best, ref_best = (load_file(o / "checkpoints" / "best.safetensors") for o in (out, ref_out))
    assert all(torch.equal(v, ref_best[k]) for k, v in best.items())
    assert _keyed(out) == _keyed(ref_out)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    return _fit(out), out


class Killed(BaseException):
    """The simulated process ends here."""


def kill_after(monkeypatch, event: str) -> None:
    """Make the run die right after its first write ``event`` (``"epoch"`` / ``"val"`` record, ``"best"``, or the
    ``"checkpoint"`` of its epoch end); from then on every write raises :class:`Killed` before writing."""
    dead = False
    checkpoints = 0

    def patch(cls, name, event_of):
        real = getattr(cls, name)

        def wrapper(self, *args, **kwargs):
            nonlocal dead, checkpoints
            if dead:
                raise Killed
            result = real(self, *args, **kwargs)
            happened = event_of(*args, **kwargs)
            checkpoints += happened == "checkpoint"
            if happened == event and (event != "checkpoint" or checkpoints == 2):  # the epoch end's, not save_every's
                dead = True
                raise Killed
            return result

        monkeypatch.setattr(cls, name, wrapper)

    patch(JsonlLogger, "log", lambda record: record["kind"])
    patch(CheckpointManager, "save_best", lambda *a: "best")
    patch(CheckpointManager, "save", lambda **kw: "checkpoint")

    def plot(*args):
        if dead:
            raise Killed

    monkeypatch.setattr(vitzoo.train.engine, "plot_training_curves", plot)


@pytest.mark.parametrize("event", ["epoch", "val", "best", "checkpoint"])
def test_a_kill_at_any_point_of_an_epoch_end_resumes_to_the_same_run(tmp_path, monkeypatch, reference, event):
    kill_after(monkeypatch, event)
    with pytest.raises(Killed):
        _fit(tmp_path)
    monkeypatch.undo()
    task = _fit(tmp_path, resume=True)  # a finished run ("checkpoint") resumes to the same state: nothing to do
    _assert_same_run(tmp_path, task, reference)


def test_a_full_disk_fails_cleanly_and_the_run_resumes(tmp_path, monkeypatch, reference):
    # the state file of the checkpoint at update 2 finds the disk full after 100 bytes
    monkeypatch.setattr(vitzoo.durable, "write_chunk", disk_full_after(100, ".step_00000002.state.pt"))
    with pytest.raises(CheckpointWriteError) as info:
        _fit(tmp_path, save_every=1)
    monkeypatch.undo()
    message = str(info.value)
    assert "No space left on device" in message and "step_00000001.state.pt is intact" in message
    assert "\n" not in message
    checkpoints = tmp_path / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step_00000001.safetensors", "step_00000001.state.pt"]
    task = _fit(tmp_path, resume=True)
    _assert_same_run(tmp_path, task, reference)


@pytest.mark.parametrize("what", ["newest checkpoint", "best"])
def test_damaged_files_found_on_resume_are_set_aside_and_the_run_ends_the_same(tmp_path, reference, what):
    _fit(tmp_path, save_every=1, max_steps=2)  # checkpoints at 1 and 2, best not yet written
    checkpoints = tmp_path / "checkpoints"
    if what == "best":
        _fit(tmp_path, save_every=1, resume=True)  # finished: best written at step 2
        (checkpoints / "best.safetensors").write_bytes(b"")
        (checkpoints / "step_00000002.state.pt").unlink()  # back to step 1, before the validation
        (checkpoints / "step_00000002.safetensors").unlink()
    else:
        damaged = checkpoints / "step_00000002.state.pt"
        damaged.write_bytes(damaged.read_bytes()[:100])
    task = _fit(tmp_path, resume=True)
    aside = sorted(p.name for p in (checkpoints / "set_aside").iterdir())
    newest = ["step_00000002.safetensors", "step_00000002.state.pt"]
    assert aside == (["best.safetensors"] if what == "best" else newest)
    _assert_same_run(tmp_path, task, reference)


def test_a_process_killed_mid_write_after_ctrl_c_with_workers_resumes(tmp_path, reference):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": str(torch.get_num_threads())}
    done = subprocess.run(
        [sys.executable, "-m", KILL_WORKER, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,  # its own process group: the Ctrl-C it sends reaches it and its workers only
    )
    assert done.returncode == 9, done.stderr[-3000:]
    assert done.stdout.split() == ["interrupted", "1"]
    assert done.stderr.count("SIGINT received") == 1, done.stderr  # once: not again by each DataLoader worker
    assert "SIGINT received by rank 0" in done.stderr
    checkpoints = tmp_path / "checkpoints"
    left = sorted(p.name for p in checkpoints.iterdir())
    assert left == [
        ".step_00000002.state.pt.tmp",  # the state file it was writing when it died
        "step_00000001.safetensors",
        "step_00000001.state.pt",
        "step_00000002.safetensors",  # weights of a checkpoint whose state never came
    ]
    task = _fit(tmp_path, resume=True)  # the dead process's lock is free
    assert not (checkpoints / ".step_00000002.state.pt.tmp").exists()
    _assert_same_run(tmp_path, task, reference)
