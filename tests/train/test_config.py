"""Recipes and overrides: every shipped recipe loads, unknown keys fail with close matches, values are type-checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import vitzoo.ssl  # noqa: F401  (registers the self-supervised tasks some recipes of configs/ name)
from vitzoo.train.config import (
    ConfigError,
    RunConfig,
    TrainConfig,
    apply_overrides,
    build,
    dump_yaml,
    to_dict,
    train_config,
)
from vitzoo.train.recipe import load_run_config
from vitzoo.train.tasks import ClassificationOptions

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))


def test_there_are_recipes():
    names = {p.name for p in CONFIGS}
    assert {"vivit_fact_enc_nano_motion.yaml", "vivit_fact_enc_base_kinetics400.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_recipe_loads_and_round_trips(path, tmp_path):
    run = load_run_config(path)
    assert isinstance(run, RunConfig)
    copy = tmp_path / "copy.yaml"
    dump_yaml(run, copy)
    assert load_run_config(copy) == run


def _recipe(tmp_path, data: dict) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


BASE = {
    "model": {"name": "vivit_fact_enc_nano_8x2", "num_classes": 4},
    "data": {"root": "data/motion"},
    "output_dir": "runs/x",
}


def test_overrides_are_applied_and_typed(tmp_path):
    run = load_run_config(
        _recipe(tmp_path, BASE),
        [
            "train.lr=3e-4",
            "train.betas=[0.9, 0.95]",
            "train.layer_decay=0.75",
            "model.options.drop_path_rate=0.2",
            "train.amp=bf16",
            "data.val=null",
            "train.epochs=3",
        ],
    )
    assert run.train.lr == pytest.approx(3e-4)  # YAML 1.1 reads "3e-4" as a string; coerced to float
    assert run.train.betas == (0.9, 0.95)
    assert run.train.layer_decay == 0.75 and run.train.amp == "bf16" and run.train.epochs == 3
    assert run.model.options == {"drop_path_rate": 0.2}
    assert run.data.val is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lrr=1", "did you mean train.lr"),
        ("trian.lr=1", "did you mean train"),
        ("data.rooot=x", "did you mean data.root"),
        ("train.lr.x=1", "is a value"),
        ("train.epochs=2.5", "expected an integer"),
        ("train.lr=fast", "expected a number"),
        ("train.grad_checkpointing=yes please", "expected true or false"),
        ("train.amp=fp8", "expected one of"),
        ("model.name=vivit_fact_enc_nano", "did you mean"),
        ("model.options.drop_pth_rate=0.1", "drop_path_rate"),
        ("lr", "key=value"),
    ],
)
def test_bad_overrides_raise_with_hints(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        load_run_config(_recipe(tmp_path, BASE), [override])


def test_unknown_yaml_key_raises_with_close_match(tmp_path):
    data = {**BASE, "train": {"epcohs": 3}}
    with pytest.raises(ConfigError, match=r"train\.epcohs.*did you mean train\.epochs"):
        load_run_config(_recipe(tmp_path, data))


def test_missing_required_entries(tmp_path):
    with pytest.raises(ConfigError, match="model.name is required"):
        load_run_config(_recipe(tmp_path, {"data": {"root": "x"}}))
    with pytest.raises(ConfigError, match="data.root is required"):
        load_run_config(_recipe(tmp_path, {"model": BASE["model"]}))
    with pytest.raises(FileNotFoundError):
        load_run_config(tmp_path / "nope.yaml")


def test_override_walks_into_free_mapping_only_under_options():
    data = apply_overrides({}, ["model.options.temporal_init=copy", "train.seed=3"], RunConfig)
    assert data == {"model": {"options": {"temporal_init": "copy"}}, "train": {"seed": 3}}
    assert build(RunConfig, data).model.options == {"temporal_init": "copy"}


def test_train_config_keyword_options():
    cfg = train_config(TrainConfig(epochs=5), lr=1e-3, betas=[0.8, 0.9])
    assert (cfg.epochs, cfg.lr, cfg.betas) == (5, 1e-3, (0.8, 0.9))
    with pytest.raises(ConfigError, match="did you mean batch_size"):
        train_config(batchsize=3)
    with pytest.raises(ConfigError, match="unknown config key 'mixup_alpha'"):
        train_config(mixup_alpha=0.8)  # a classification option: ClassificationOptions, not TrainConfig
    assert to_dict(cfg)["betas"] == [0.8, 0.9]


def test_mixup_needs_an_even_batch(tmp_path):
    with pytest.raises(ConfigError, match=r"Mixup/CutMix needs an even train.batch_size, got 3"):
        ClassificationOptions(mixup_alpha=0.8).check_train(train_config(batch_size=3))
    ClassificationOptions().check_train(train_config(batch_size=3))  # no mixing: any batch
    for options in (["train.mixup_alpha=0.8"], ["task.options.cutmix_alpha=1.0"]):
        with pytest.raises(ConfigError, match="even train.batch_size, got 3"):
            load_run_config(_recipe(tmp_path, BASE), ["train.batch_size=3", *options])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lr=-1", r"train.lr must be > 0, got -1"),
        ("train.lr=0", r"train.lr must be > 0"),
        ("train.lr=.nan", r"train.lr must be > 0, got nan"),
        ("train.label_smoothing=1.5", r"train.label_smoothing must be in \[0, 1\), got 1.5"),
        ("train.label_smoothing=1.0", r"train.label_smoothing must be in \[0, 1\)"),
        ("train.weight_decay=-0.1", r"train.weight_decay must be >= 0"),
        ("train.min_lr=0.1", r"train.min_lr \(0.1\) must not exceed train.lr"),
        ("train.betas=[1.0, 0.999]", r"train.betas\[0\] must be in \[0, 1\)"),
        ("train.eps=0", r"train.eps must be > 0"),
        ("train.mixup_alpha=-1", r"train.mixup_alpha must be >= 0"),
        ("train.dist_timeout_s=0", r"train.dist_timeout_s must be > 0"),
        ("train.ema_decay=1", r"train.ema_decay must be in \(0, 1\)"),
        ("train.device=gpu", r"train.device='gpu' is not a device"),
        ("data.backend=torchvision", r"data.backend.*expected one of"),
        ("data.backend=pyavv", r"did you mean.*pyav"),
    ],
)
def test_values_out_of_range_are_refused_when_the_recipe_loads(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        load_run_config(_recipe(tmp_path, BASE), [override])


def test_values_at_the_edges_of_their_ranges_are_accepted(tmp_path):
    edges = ["train.label_smoothing=0.0", "train.weight_decay=0", "train.min_lr=5e-4", "train.warmup_epochs=0"]
    edges += ["train.betas=[0.0, 0.999]", "train.ema_decay=0.9999", "train.device=cpu", "data.backend=pyav"]
    run = load_run_config(_recipe(tmp_path, BASE), edges)
    assert run.train.min_lr == run.train.lr and run.data.backend == "pyav"
