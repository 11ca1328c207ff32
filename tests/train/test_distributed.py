"""DDP: ``fit`` and ``fit_task`` run unchanged under ``torchrun --nproc_per_node=2`` (gloo on CPU) and match one
process.

With ``DistributedSampler``, rank ``r`` of 2 gets positions ``r, r + 2, ...`` of the epoch's permutation, so two
ranks with batches of 2 see exactly the clips one process sees with batches of 4; DDP (wrapping the task) averages
the gradients, so the weights agree up to float summation order. Evaluation shards without padding and sums the
counts. The label-free task checks that DDP trains a projection head next to the model while a momentum target
network without gradients follows on every rank.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import REPO_ROOT
from tests.helpers.training import IMAGE_SHAPE, RandomClips, RandomViews, label_free_task, nano_model
from vitzoo.train import fit, fit_task

WORKER = "tests.train.ddp_worker"  # run as a module: it imports tests.helpers


def _run_torchrun(out: Path, kind: str, *, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", WORKER]
    return subprocess.run([*cmd, str(out), kind], env=env, capture_output=True, text=True, timeout=timeout)


def _torchrun(out: Path, kind: str) -> dict:
    """Run the worker on 2 processes; its result.pt."""
    done = _run_torchrun(out, kind)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(out / "result.pt", weights_only=True)


def test_the_process_group_gets_the_configured_timeout(monkeypatch):
    import datetime

    import torch.distributed as dist

    from vitzoo.train.distributed import init_distributed

    seen = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda **kwargs: seen.update(kwargs))
    monkeypatch.setattr(dist, "get_rank", lambda: 0)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    info = init_distributed(timeout_s=42)
    assert seen == {"backend": "gloo", "timeout": datetime.timedelta(seconds=42)} and info.world_size == 2


@pytest.mark.slow
def test_a_stalled_rank_fails_the_run_after_the_timeout(tmp_path):
    """Rank 1 sleeps for 10 minutes; with dist_timeout_s=5 rank 0 fails (and torchrun stops rank 1) long before the
    subprocess's own limit, instead of waiting for gloo's default 30 minutes. Rank 0 checkpoints its last update."""
    done = _run_torchrun(tmp_path, "stall", timeout=240)
    assert done.returncode != 0
    assert (tmp_path / "checkpoints" / "step_00000001.state.pt").is_file(), done.stderr[-3000:]


def _max_diff(a: dict, b: dict) -> float:
    return max((v.float() - b[k].float()).abs().max().item() for k, v in a.items())


@pytest.mark.slow
def test_two_process_ddp_matches_single_process(tmp_path):
    result = _torchrun(tmp_path / "ddp", "classification")
    assert result["updates"] == [4, 4]  # 16 clips / (2 ranks x 2) per update, on both ranks

    model = nano_model()
    single = fit(
        model,
        RandomClips(16, model.input_shape, 4),
        val_set=RandomClips(5, model.input_shape, 4, views=2, seed=1),
        out_dir=tmp_path / "single",
        epochs=1,
        batch_size=4,
        lr=1e-3,
        warmup_epochs=0,
        log_every=1,
        progress=False,
        plot=False,
    )
    ddp_weights = result["state_dict"]
    diff = max((v - ddp_weights[k]).abs().max().item() for k, v in model.state_dict().items())
    moved = max((v - nano_model().state_dict()[k]).abs().max().item() for k, v in model.state_dict().items())
    assert diff < 1e-4 < moved

    # rank 0 alone wrote the logs: one line per step, and the validation numbers of the whole set
    records = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4]
    (val,) = [r for r in records if r["kind"] == "val"]
    assert val["num_samples"] == 5
    assert val["top1"] == pytest.approx(single.evaluations[0].top1)
    assert val["loss"] == pytest.approx(single.evaluations[0].loss, abs=1e-4)
    assert sorted(p.name for p in (tmp_path / "ddp" / "checkpoints").iterdir()) == [
        "best.safetensors",
        "step_00000004.safetensors",
        "step_00000004.state.pt",
    ]
    state = torch.load(tmp_path / "ddp" / "checkpoints" / "step_00000004.state.pt", weights_only=True)
    assert len(state["rng"]) == 2 and not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])


@pytest.mark.slow
def test_two_process_ddp_trains_a_label_free_task_like_one_process(tmp_path):
    result = _torchrun(tmp_path / "ddp", "label_free")
    assert result["updates"] == [4, 4]
    task = label_free_task()
    common = dict(epochs=1, lr=1e-3, warmup_epochs=0, log_every=1, progress=False, plot=False)
    val = RandomViews(3, IMAGE_SHAPE, seed=1)
    train = RandomViews(16, IMAGE_SHAPE)
    single = fit_task(task, train, val_data=val, out_dir=tmp_path / "one", batch_size=4, **common)
    ddp = result["state_dict"]
    assert any(k.startswith("target.") for k in ddp) and any(k.startswith("projector.") for k in ddp)
    moved = _max_diff(task.state_dict(), label_free_task().state_dict())
    diff = _max_diff(task.state_dict(), ddp)
    # model, head and target network; Adam divides tiny gradients (views nearly agree) by their tiny RMS, which
    # magnifies the float summation differences of the gradient average, so the bound is relative to the motion
    assert diff < 0.1 * moved
    records = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    (val_record,) = [r for r in records if r["kind"] == "val"]
    assert val_record["val_distance"] == pytest.approx(single.validations[0]["val_distance"], rel=1e-3)
