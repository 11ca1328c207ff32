"""The task registry and recipes that name a task: lookup errors, task options, the class count each task needs,
and ``train_from_config`` training a registered label-free task with its own datasets (the path a ``vitzoo
pretrain`` command reuses)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO_ROOT
from tests.helpers.training import NANO, RandomViews, TwoViewConsistency
from vitzoo.train import ConfigError, TaskData, get_task, load_run_config, register_task
from vitzoo.train.recipe import evaluate_from_config, train_from_config
from vitzoo.train.tasks import registry, task_names


@dataclass
class ConsistencyOptions:
    dim: int = 16
    momentum: float = 0.9

    def validate(self) -> None:
        if not 0 <= self.momentum < 1:
            raise ValueError(f"task.options.momentum must be in [0, 1), got {self.momentum}")


def _views(run, model) -> TaskData:
    return TaskData(train=RandomViews(4, model.input_shape), val=RandomViews(2, model.input_shape, seed=1))


@pytest.fixture
def consistency(monkeypatch):
    """``consistency`` registered for this test only (a label-free task with its own datasets and options)."""
    monkeypatch.setattr(registry, "TASKS", registry.TASKS.copy())

    @register_task("consistency", options=ConsistencyOptions, datasets=_views)
    def build(run, model, data):
        options = get_task("consistency").parse_options(run.task.options)
        return TwoViewConsistency(model, dim=options.dim, momentum=options.momentum)

    return build


def _recipe(tmp_path: Path, task: dict | None, num_classes: int) -> Path:
    data = {"model": {"name": NANO, "num_classes": num_classes}, "data": {"root": "unused"}}
    data["output_dir"] = str(tmp_path / "run")
    data["train"] = {"epochs": 1, "batch_size": 2, "progress": False, "plot": False}
    if task is not None:
        data["task"] = task
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_classification_is_the_default_and_needs_a_head(tmp_path):
    assert "classification" in task_names() and get_task("classification").needs_head
    run = load_run_config(_recipe(tmp_path, None, 4))
    assert run.task.name == "classification" and run.task.options == {}
    with pytest.raises(ConfigError, match=r"model.num_classes must be >= 1 \(the task trains a classifier\), got 0"):
        load_run_config(_recipe(tmp_path, None, 0))


def test_unknown_task_and_options_raise_with_hints(tmp_path, consistency):
    with pytest.raises(ConfigError, match="did you mean classification"):
        load_run_config(_recipe(tmp_path, {"name": "clasification"}, 4))
    with pytest.raises(ConfigError, match=r"task\.options\.momentun.*did you mean task\.options\.momentum"):
        load_run_config(_recipe(tmp_path, {"name": "consistency", "options": {"momentun": 0.5}}, 0))
    with pytest.raises(ConfigError, match=r"momentum must be in \[0, 1\)"):
        load_run_config(_recipe(tmp_path, {"name": "consistency"}, 0), ["task.options.momentum=1.5"])
    with pytest.raises(ConfigError, match=r"options\.label_smothing.*did you mean task\.options\.label_smoothing"):
        load_run_config(_recipe(tmp_path, {"name": "classification", "options": {"label_smothing": 0.1}}, 4))
    register_task("plain")(lambda run, model, data: None)  # a task without options
    with pytest.raises(ConfigError, match="takes no options"):
        load_run_config(_recipe(tmp_path, {"name": "plain", "options": {"x": 1}}, 4))
    with pytest.raises(ValueError, match="already registered"):
        register_task("consistency")(lambda run, model, data: None)


def test_a_registered_label_free_task_trains_from_a_recipe(tmp_path, consistency):
    run = load_run_config(_recipe(tmp_path, {"name": "consistency", "options": {"dim": 8}}, 0), ["train.eval_every=1"])
    assert run.model.num_classes == 0  # allowed: the task needs no head
    result = train_from_config(run)
    assert result.completed and result.monitor == "val_distance" and result.best_value is not None
    assert result.best_top1 is None
    saved = yaml.safe_load((Path(run.output_dir) / "config.yaml").read_text())
    assert saved["task"] == {"name": "consistency", "options": {"dim": 8}}
    with pytest.raises(ConfigError, match="evaluates classifiers"):
        evaluate_from_config(run)


@pytest.mark.slow
def test_an_unknown_task_before_vitzoo_ssl_is_imported_says_how_to_register_it(tmp_path):
    """vitzoo.train may not import vitzoo.ssl (a layer above it): a program reading a self-supervised recipe is told
    to import it, in a fresh process where nothing else has."""
    code = (
        "from vitzoo.train import ConfigError, load_run_config\n"
        "try:\n"
        "    load_run_config('configs/simclr_vivit_joint_micro_motion.yaml')\n"
        "except ConfigError as e:\n"
        "    print(e)\n"
        "import vitzoo.ssl\n"
        "print(load_run_config('configs/simclr_vivit_joint_micro_motion.yaml').task.name)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    first, second = out.stdout.strip().splitlines()
    assert "unknown task 'simclr'" in first and "`import vitzoo.ssl` first" in first
    assert second == "simclr"
