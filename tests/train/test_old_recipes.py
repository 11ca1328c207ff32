"""Recipes written before ``task.options``: the classification keys under ``train:`` (in the file or ``--set``)
still load and train, each with a one-line deprecation warning; the same key in both places with different values
is refused with one line; their values are checked under their old names."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vitzoo.train import ClassificationOptions, ConfigError, register_task
from vitzoo.train.recipe import load_run_config
from vitzoo.train.tasks import registry

ROOT = Path(__file__).parents[2]
RECIPE = ROOT / "configs" / "vivit_fact_enc_nano_motion.yaml"
BASE = {
    "model": {"name": "vivit_fact_enc_nano_8x2", "num_classes": 4},
    "data": {"root": "data/motion"},
    "output_dir": "runs/x",
}
OLD = {"label_smoothing": 0.1, "mixup_alpha": 0.8, "cutmix_alpha": 1.0, "eval_average": "logits"}


def _recipe(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _deprecations(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]


def test_old_train_keys_move_to_task_options_with_one_warning_each(tmp_path, caplog):
    path = _recipe(tmp_path, {**BASE, "train": {"batch_size": 4, **OLD}})
    with caplog.at_level(logging.WARNING, logger="vitzoo.train.legacy"):
        run = load_run_config(path)
    assert run.task.name == "classification" and run.task.options == OLD
    assert not hasattr(run.train, "label_smoothing")
    warnings = _deprecations(caplog)
    assert len(warnings) == 4 and all("\n" not in w for w in warnings)
    assert "train.label_smoothing is deprecated: set task.options.label_smoothing" in warnings[0]
    new = {**BASE, "train": {"batch_size": 4}, "task": {"options": OLD}}
    assert load_run_config(path) == load_run_config(_recipe(tmp_path, new))


def test_old_keys_in_overrides_and_agreeing_values(tmp_path, caplog):
    data = {**BASE, "task": {"options": {"label_smoothing": 0.2}}}
    with caplog.at_level(logging.WARNING, logger="vitzoo.train.legacy"):
        run = load_run_config(_recipe(tmp_path, data), ["train.label_smoothing=0.2", "train.eval_average=logits"])
    assert run.task.options == {"label_smoothing": 0.2, "eval_average": "logits"}
    assert len(_deprecations(caplog)) == 2


def test_old_and_new_keys_that_differ_are_refused_in_one_line(tmp_path):
    data = {**BASE, "train": {"label_smoothing": 0.1}, "task": {"options": {"label_smoothing": 0.2}}}
    with pytest.raises(ConfigError, match=r"train.label_smoothing=0.1 and task.options.label_smoothing=0.2 differ"):
        load_run_config(_recipe(tmp_path, data))
    with pytest.raises(ConfigError, match=r"train.mixup_alpha=0.5 and task.options.mixup_alpha=0.8 differ") as info:
        load_run_config(_recipe(tmp_path, BASE), ["task.options.mixup_alpha=0.8", "train.mixup_alpha=0.5"])
    assert "\n" not in str(info.value)


def test_old_keys_are_checked_under_their_old_names(tmp_path):
    with pytest.raises(ConfigError, match=r"train.label_smoothing must be in \[0, 1\), got 1.5"):
        load_run_config(_recipe(tmp_path, {**BASE, "train": {"label_smoothing": 1.5}}))
    with pytest.raises(ConfigError, match=r"train.eval_average='mean'; expected one of 'prob', 'logits'"):
        load_run_config(_recipe(tmp_path, BASE), ["train.eval_average=mean"])
    with pytest.raises(ConfigError, match=r"task.options.mixup_alpha must be >= 0, got -1"):
        load_run_config(_recipe(tmp_path, BASE), ["task.options.mixup_alpha=-1"])


def test_a_task_without_the_old_key_ignores_it_with_a_warning(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(registry, "TASKS", registry.TASKS.copy())
    register_task("plain")(lambda run, model, data: None)
    data = {**BASE, "task": {"name": "plain"}, "train": {"label_smoothing": 0.1}}
    with caplog.at_level(logging.WARNING, logger="vitzoo.train.legacy"):
        run = load_run_config(_recipe(tmp_path, data))
    assert run.task.options == {}
    assert _deprecations(caplog) == ["train.label_smoothing is deprecated and task 'plain' does not take it: ignored"]


def test_classification_options_defaults_are_the_old_training_defaults():
    assert ClassificationOptions() == ClassificationOptions(0.0, 0.0, 0.0, "prob")


@pytest.fixture(scope="module")
def motion(tmp_path_factory):
    from vitzoo.data import make_motion_dataset

    root = tmp_path_factory.mktemp("motion")
    make_motion_dataset(root, num_train=8, num_val=4, num_frames=12, size=32, progress=False)
    return root


@pytest.mark.slow
def test_an_old_recipe_trains_with_vitzoo_train_and_its_log_has_one_line_per_step(motion, tmp_path):
    """``vitzoo train`` on a recipe of the old form, stderr to a file (not a terminal, as under nohup or CI): it
    trains, warns once per old key, and logs one line per log step and per epoch instead of progress frames."""
    recipe = yaml.safe_load(RECIPE.read_text())
    recipe["task"] = {"name": "classification"}
    recipe["train"]["label_smoothing"] = 0.1
    path = _recipe(tmp_path, recipe)
    out = tmp_path / "run"
    sets = [f"data.root={motion}", f"output_dir={out}", "train.batch_size=4", "train.epochs=2", "train.log_every=1"]
    sets += ["train.eval_every=1", "train.num_workers=0", "train.plot=false", "train.progress=true"]
    command = [sys.executable, "-m", "vitzoo.cli.main", "train", "--config", str(path)]
    command += [a for s in sets for a in ("--set", s)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with open(tmp_path / "stderr.log", "w") as err:
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=err, env=env, timeout=300, check=False)
    log_text = (tmp_path / "stderr.log").read_text()
    assert done.returncode == 0, log_text[-2000:]
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["task"]["options"] == {"label_smoothing": 0.1} and "label_smoothing" not in saved["train"]
    assert log_text.count("train.label_smoothing is deprecated: set task.options.label_smoothing") == 1
    assert "\r" not in log_text
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in records if r["kind"] == "train"]
    assert train_steps == [1, 2, 3, 4]  # 8 clips / 4 per update, 2 epochs
    lines = [line for line in log_text.splitlines() if "vitzoo.train.run_log:" in line]
    step_lines = [line for line in lines if "samples/s" in line]
    assert [int(line.split(" step ")[1].split(":")[0]) for line in step_lines] == train_steps
    assert len([line for line in lines if " done at step " in line]) == 2  # one per epoch
