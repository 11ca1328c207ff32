"""Exact resume: a run stopped part-way and resumed ends with bitwise the same weights as an uninterrupted one.

Everything random is switched on (Mixup/CutMix on numpy's RNG, stochastic depth and dropout on torch's,
shuffling from the loader's seed), plus gradient accumulation and an EMA, so a checkpoint that forgot any
of them would change the result; ``test_resume_without_rng_restore_differs`` shows the comparison notices.
"""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch

import vitzoo.train.engine
import vitzoo.train.resume
from tests.helpers.training import RandomClips, nano_model
from vitzoo.train import fit

# 12 clips / (2 x 2) = 3 updates per epoch, 6 in all
OPTIONS = dict(
    epochs=2,
    batch_size=2,
    accum_steps=2,
    lr=1e-3,
    warmup_epochs=0.5,
    mixup_alpha=0.8,
    cutmix_alpha=1.0,
    label_smoothing=0.1,
    ema_decay=0.9,
    log_every=1,
    progress=False,
    plot=False,
)


def _model():
    return nano_model(drop_path_rate=0.2, drop_rate=0.2)


def _data():
    return RandomClips(12, (3, 4, 32, 32), 4)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    model = _model()
    fit(model, _data(), out_dir=out, **OPTIONS)
    return model.state_dict(), out


def _assert_same(state_dict, model):
    mismatched = [k for k, v in model.state_dict().items() if not torch.equal(v, state_dict[k])]
    assert not mismatched, f"{len(mismatched)} tensors differ, e.g. {mismatched[:3]}"


def _epoch_losses(out) -> list[float]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if r["kind"] == "epoch"]


@pytest.mark.parametrize("stop_at", [4, 3], ids=["mid-epoch", "epoch-end"])
def test_stop_and_resume_is_bitwise_identical(tmp_path, uninterrupted, stop_at):
    expected, full_dir = uninterrupted
    first = fit(_model(), _data(), out_dir=tmp_path, max_steps=stop_at, **OPTIONS)
    assert first.step == stop_at and not first.completed
    model = _model()  # a fresh process would start from a freshly built model
    second = fit(model, _data(), out_dir=tmp_path, resume=True, **OPTIONS)
    assert second.completed and second.step == 6
    _assert_same(expected, model)
    state = torch.load(second.last_checkpoint, weights_only=True)
    full = torch.load(full_dir / "checkpoints" / "step_00000006.state.pt", weights_only=True)
    assert all(torch.equal(v, full["ema"][k]) for k, v in state["ema"].items())  # EMA resumed exactly too
    steps = [
        json.loads(line)["step"]
        for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["kind"] == "train"
    ]
    assert steps == [1, 2, 3, 4, 5, 6]  # one line per step, none lost or repeated


def test_resume_after_a_callback_error(tmp_path, uninterrupted):
    def fail(state):
        if state.step == 2:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(_model(), _data(), out_dir=tmp_path, callbacks=[fail], **OPTIONS)
    model = _model()
    fit(model, _data(), out_dir=tmp_path, resume=True, **OPTIONS)
    _assert_same(uninterrupted[0], model)
    assert _epoch_losses(tmp_path) == _epoch_losses(uninterrupted[1])  # the epoch's loss sum carried over


def test_resume_after_sigint(tmp_path, uninterrupted):
    def interrupt(state):
        if state.step == 5:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C: finish this update, save, return

    result = fit(_model(), _data(), out_dir=tmp_path, callbacks=[interrupt], **OPTIONS)
    assert result.interrupted and result.step == 5
    model = _model()
    fit(model, _data(), out_dir=tmp_path, resume=True, **OPTIONS)
    _assert_same(uninterrupted[0], model)
    assert _epoch_losses(tmp_path) == _epoch_losses(uninterrupted[1])  # the epoch's loss sum carried over


def test_resume_without_rng_restore_differs(tmp_path, uninterrupted, monkeypatch):
    fit(_model(), _data(), out_dir=tmp_path, max_steps=4, **OPTIONS)
    monkeypatch.setattr(vitzoo.train.resume, "restore_rng", lambda state: None)
    model = _model()
    fit(model, _data(), out_dir=tmp_path, resume=True, **OPTIONS)
    assert not all(torch.equal(v, uninterrupted[0][k]) for k, v in model.state_dict().items())


def test_resume_refuses_a_different_epoch_length(tmp_path):
    fit(_model(), _data(), out_dir=tmp_path, max_steps=2, **OPTIONS)
    with pytest.raises(ValueError, match="updates per epoch"):
        fit(_model(), _data(), out_dir=tmp_path, resume=True, **{**OPTIONS, "batch_size": 4})


def test_resume_warns_about_changed_options(tmp_path, caplog):
    fit(_model(), _data(), out_dir=tmp_path, max_steps=2, **OPTIONS)
    with caplog.at_level("INFO", logger="vitzoo.train.resume"):
        fit(_model(), _data(), out_dir=tmp_path, resume=True, **{**OPTIONS, "lr": 5e-4, "log_every": 2})
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "option" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("resuming with changed option train.lr 0.0005 (was 0.001)")
    infos = [r.getMessage() for r in caplog.records if r.levelname == "INFO" and r.getMessage().startswith("resuming")]
    assert "resuming with train.log_every 2 (was 1)" in infos  # a safe change: logged, not warned


def test_state_files_written_before_tasks_still_resume(tmp_path, uninterrupted, caplog):
    """A state file of the old loop (``best_top1``, ``epoch_loss_sum``, no task state, the classification options
    in its training options) resumes exactly, without reporting changed options."""
    fit(_model(), _data(), out_dir=tmp_path, max_steps=4, **OPTIONS)  # mid-epoch: the epoch sums matter
    path = tmp_path / "checkpoints" / "step_00000004.state.pt"
    state = torch.load(path, weights_only=True)
    assert state["task"] == {} and state["monitor"] == "top1"
    old = {k: v for k, v in state.items() if k not in ("monitor", "best_value", "epoch_sums", "task")}
    old |= {"best_top1": -1.0, "epoch_loss_sum": state["epoch_sums"]["loss"]}
    train_config = json.loads(state["train_config"])
    assert "label_smoothing" not in train_config  # today's layout; the old one held the classification options
    old_fields = {"label_smoothing": 0.1, "mixup_alpha": 0.8, "cutmix_alpha": 1.0, "eval_average": "prob"}
    old["train_config"] = json.dumps({**train_config, **old_fields})
    torch.save(old, path)
    model = _model()
    with caplog.at_level("WARNING", logger="vitzoo.train.resume"):
        fit(model, _data(), out_dir=tmp_path, resume=True, **OPTIONS)
    assert not [r for r in caplog.records if "changed option" in r.getMessage()]
    _assert_same(uninterrupted[0], model)
    assert _epoch_losses(tmp_path) == _epoch_losses(uninterrupted[1])  # the epoch's loss sum carried over
