"""A resume may not change what the run computes: the task and its options, the model (name and config: input
shape, class count), the optimiser kind are recorded in every checkpoint and compared; a changed recipe is
refused in one line listing every difference. Safe changes (epochs, logging, workers) are logged, one line each."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch
from torch.utils.data import TensorDataset

import vitzoo
from tests.helpers.training import IMAGE_NANO
from vitzoo.schema import ConfigError
from vitzoo.ssl import build_method
from vitzoo.train import fit_task

SETTINGS = dict(epochs=2, batch_size=2, lr=1e-3, warmup_epochs=0.5, progress=False, plot=False, seed=0)


def _task(method="simclr", depth=1, **options):
    torch.manual_seed(0)
    backbone = vitzoo.create(IMAGE_NANO, num_classes=0, depth=depth)
    return build_method(method, backbone, proj_hidden_dim=16, proj_out_dim=8, **options)


def _fit(task, out, **options):
    views = torch.randn(4, 2, 3, 32, 32, generator=torch.Generator().manual_seed(1))  # (N, V, C, H, W)
    data = TensorDataset(views, torch.zeros(4, dtype=torch.long))
    return fit_task(task, data, out_dir=out, **{**SETTINGS, **options})


@pytest.fixture(scope="module")
def stopped_once(tmp_path_factory):
    out = tmp_path_factory.mktemp("stopped")
    _fit(_task(), out, max_steps=1)
    return out


@pytest.fixture
def stopped(stopped_once, tmp_path):
    """A copy of a SimCLR run stopped after 1 of its 4 updates."""
    return shutil.copytree(stopped_once, tmp_path / "run")


def test_resume_refuses_changed_task_options_and_model_listing_all(stopped):
    with pytest.raises(ConfigError) as error:
        _fit(_task(temperature=0.5, depth=2), stopped, resume=True)
    message = str(error.value)
    assert "\n" not in message and "the run's recipe changed" in message
    assert "task.options.temperature 0.1 -> 0.5" in message and "model.depth 1 -> 2" in message


def test_resume_refuses_another_method(stopped):
    with pytest.raises(ConfigError, match="task 'SimCLR' -> 'SupCon'"):
        _fit(_task("supcon"), stopped, resume=True)


def test_safe_changes_resume_and_are_logged_one_line_each(stopped, caplog):
    with caplog.at_level(logging.INFO, logger="vitzoo.train.resume"):
        result = _fit(_task(), stopped, resume=True, epochs=3, log_every=2, max_steps=2)
    assert result.step == 2
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("resuming with")]
    assert any(line.startswith("resuming with train.log_every 2 (was 10)") for line in lines)
    assert any(line.startswith("resuming with changed option train.epochs 3 (was 2)") for line in lines)
    assert any(line.startswith("resuming with train.max_steps 2 (was 1)") for line in lines)
    assert len(lines) == 3


def test_checkpoints_without_the_record_still_resume(stopped, caplog):
    path = stopped / "checkpoints" / "step_00000001.state.pt"
    state = torch.load(path, weights_only=True)
    assert json.loads(state["run_record"])["task.options.temperature"] == 0.1
    del state["run_record"]
    torch.save(state, path)
    with caplog.at_level(logging.INFO, logger="vitzoo.train.resume"):
        result = _fit(_task(temperature=0.5), stopped, resume=True, max_steps=2)  # nothing to compare with
    assert result.step == 2
    assert any("predates the run record" in r.getMessage() for r in caplog.records)
