"""The engine trains a task without labels: two views per sample, a momentum target network, a projection head,
a monitor metric where lower is better (``helpers.TwoViewConsistency``).

It learns (the loss goes down), keeps ``best.safetensors`` at the lowest validation value, logs the task's
metric per window and per epoch, and resumes bit for bit: weights, projection head, target network and
optimizer state after a stop at step ``k`` equal those of an uninterrupted run. The negative control shows the
comparison would notice a target network that was not restored.
"""

from __future__ import annotations

import json

import pytest
import torch

import vitzoo
from tests.helpers.training import IMAGE_SHAPE, RandomViews, TwoViewConsistency, label_free_task
from vitzoo.checkpoints.io import read_metadata
from vitzoo.train import Task, fit_task
from vitzoo.train.engine import is_better

# 8 samples / batch 2 = 4 updates per epoch
OPTIONS = dict(
    epochs=2,
    batch_size=2,
    lr=1e-3,
    warmup_epochs=0.5,
    weight_decay=0.05,
    ema_decay=0.9,
    log_every=1,
    progress=False,
    plot=False,
)


def _task(seed: int = 0) -> TwoViewConsistency:
    return label_free_task(seed=seed, drop_path_rate=0.1)


def _data(seed: int = 0, n: int = 8) -> RandomViews:
    return RandomViews(n, IMAGE_SHAPE, seed=seed)


def _records(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_label_free_task_learns_and_keeps_the_lowest_validation(tmp_path):
    task = _task()
    result = fit_task(
        task,
        _data(),
        val_data=_data(seed=1, n=4),
        out_dir=tmp_path,
        **{**OPTIONS, "epochs": 4, "lr": 3e-3, "warmup_epochs": 0, "weight_decay": 0.0},
    )
    assert result.completed and result.step == 16 and result.monitor == "val_distance"
    records = _records(tmp_path)
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert epochs[-1]["loss"] < 0.5 * epochs[0]["loss"]  # it learns
    assert all("feature_std" in r for r in records if r["kind"] in ("train", "epoch"))  # the task's metric, logged
    val = [r for r in records if r["kind"] == "val"]
    values = [r["val_distance"] for r in val]
    assert len(values) == 4 and min(values) < max(values)
    best = min(val, key=lambda r: r["val_distance"])  # lower is better: the best is the lowest, not the highest
    assert result.best_value == best["val_distance"] == min(v["val_distance"] for v in result.validations)
    meta = read_metadata(result.best_checkpoint)
    assert meta["vitzoo.step"] == str(best["step"]) and float(meta["vitzoo.val_distance"]) == min(values)
    reloaded = vitzoo.load(result.best_checkpoint)  # the weights are task.model alone, a loadable vitzoo model
    assert reloaded.cfg.num_classes == 0 and set(reloaded.state_dict()) == set(task.model.state_dict())


def test_is_better_follows_the_direction():
    assert is_better(0.5, None, higher_is_better=False) and is_better(0.5, None, higher_is_better=True)
    assert is_better(0.4, 0.5, higher_is_better=False) and not is_better(0.6, 0.5, higher_is_better=False)
    assert is_better(0.6, 0.5, higher_is_better=True) and not is_better(0.4, 0.5, higher_is_better=True)
    assert not is_better(float("nan"), None, higher_is_better=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    task = _task()
    fit_task(task, _data(), val_data=_data(seed=1, n=2), out_dir=out, **OPTIONS)
    return task.state_dict(), torch.load(out / "checkpoints" / "step_00000008.state.pt", weights_only=True)


def _differing(expected: dict, actual: dict) -> list[str]:
    return [k for k, v in actual.items() if not torch.equal(v, expected[k])]


def _resume(tmp_path, stop_at: int) -> tuple[dict, dict]:
    first = fit_task(_task(), _data(), val_data=_data(seed=1, n=2), out_dir=tmp_path, max_steps=stop_at, **OPTIONS)
    assert first.step == stop_at and not first.completed
    task = _task(seed=1)  # a fresh process: other initial weights, overwritten by the checkpoint
    second = fit_task(task, _data(), val_data=_data(seed=1, n=2), out_dir=tmp_path, resume=True, **OPTIONS)
    assert second.completed and second.step == 8
    return task.state_dict(), torch.load(second.last_checkpoint, weights_only=True)


@pytest.mark.parametrize("stop_at", [3, 4], ids=["mid-epoch", "epoch-end"])
def test_label_free_resume_is_bitwise_identical(tmp_path, uninterrupted, stop_at):
    expected, expected_state = uninterrupted
    weights, state = _resume(tmp_path, stop_at)
    assert any(k.startswith("target.") for k in weights) and any(k.startswith("projector.") for k in weights)
    assert not _differing(expected, weights)  # model, projection head and target network
    assert not _differing(expected_state["task"], state["task"])
    assert not _differing(expected_state["ema"], state["ema"])
    opt, expected_opt = state["optimizer"]["state"], expected_state["optimizer"]["state"]
    assert opt.keys() == expected_opt.keys()
    assert all(torch.equal(opt[i][k], expected_opt[i][k]) for i in opt for k in opt[i])
    assert (state["best_value"], state["best_step"]) == (expected_state["best_value"], expected_state["best_step"])


def test_resume_without_the_target_network_differs(tmp_path, uninterrupted, monkeypatch):
    fit_task(_task(), _data(), val_data=_data(seed=1, n=2), out_dir=tmp_path, max_steps=3, **OPTIONS)
    monkeypatch.setattr(Task, "load_extra_state_dict", lambda self, state: None)  # forget head and target
    task = _task()
    fit_task(task, _data(), val_data=_data(seed=1, n=2), out_dir=tmp_path, resume=True, **OPTIONS)
    assert _differing(uninterrupted[0], task.state_dict())
