"""``--compile`` on ``vitzoo train`` / ``pretrain`` / ``eval``: the same as ``--set train.compile=true``, and
``vitzoo eval`` compiles the model it evaluates (the engine's side is tested in ``tests/train/test_compile.py``)."""

from __future__ import annotations

import pytest
import torch

import vitzoo
from tests.helpers import REPO_ROOT
from vitzoo.cli.main import build_parser, main
from vitzoo.train.recipe import load_run_config

RECIPE = REPO_ROOT / "configs" / "vivit_fact_enc_nano_motion.yaml"


@pytest.mark.parametrize("command", ["train", "pretrain", "eval"])
def test_compile_flag_is_the_recipe_key(command):
    args = build_parser().parse_args([command, "--config", str(RECIPE), "--set", "train.lr=1e-3", "--compile"])
    assert args.overrides == ["train.lr=1e-3", "train.compile=true"]
    assert load_run_config(RECIPE, args.overrides).train.compile is True
    assert load_run_config(RECIPE, []).train.compile is False


def test_compile_key_is_checked_by_the_schema():
    from vitzoo.schema import ConfigError

    with pytest.raises(ConfigError, match="train.compile"):
        load_run_config(RECIPE, ["train.compile=often"])
    with pytest.raises(ConfigError, match="compile"):
        load_run_config(RECIPE, ["train.compiled=true"])  # unknown key: the close match is named


def test_eval_compiles_the_model_it_evaluates(tmp_path, monkeypatch):
    from vitzoo.data import make_motion_dataset

    compiled = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **k: compiled.append(type(self).__name__))
    make_motion_dataset(tmp_path / "data", num_train=2, num_val=2, num_frames=12, size=32, progress=False)
    torch.manual_seed(0)
    model = vitzoo.create("vivit_fact_enc_nano_8x2", num_classes=4)
    weights = vitzoo.save(model, tmp_path / "m.safetensors")
    overrides = [f"data.root={tmp_path / 'data'}", f"output_dir={tmp_path / 'run'}", "train.progress=false"]
    argv = ["--config", str(RECIPE), *[a for o in overrides for a in ("--set", o)], "--checkpoint", str(weights)]
    assert main(["eval", *argv, "--compile"]) == 0
    assert compiled == [type(model).__name__]
