"""``knn`` / ``linear-probe`` check every argument (and ``--out``) before extracting any feature, and leave
nothing behind when they refuse; ``pretrain --resume PATH`` continues from a chosen checkpoint, as ``train`` does."""

from __future__ import annotations

from pathlib import Path

import pytest

import vitzoo.ssl.evaluate
import vitzoo.train.recipe
from vitzoo.cli.main import main

RECIPE = Path(__file__).parents[2] / "configs" / "simclr_vivit_joint_micro_motion.yaml"


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if features are extracted."""

    def extract(*args, **kwargs):
        raise AssertionError("features extracted before the arguments were checked")

    monkeypatch.setattr(vitzoo.ssl.evaluate, "frozen_features", extract)


def _args(tmp_path: Path, command: str, *extra: str) -> list[str]:
    sets = [f"data.root={tmp_path}", f"output_dir={tmp_path / 'run'}"]
    return [command, "--config", str(RECIPE), *(a for s in sets for a in ("--set", s)), "--random-init", *extra]


@pytest.mark.parametrize(
    ("command", "extra", "message"),
    [
        ("knn", ["--k", "0"], "--k must be >= 1, got 0"),
        ("knn", ["--temperature", "0"], "--temperature must be > 0, got 0.0"),
        ("linear-probe", ["--epochs", "0"], "--epochs must be >= 1, got 0"),
        ("linear-probe", ["--lr", "-1"], "--lr must be > 0, got -1.0"),
        ("linear-probe", ["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        ("linear-probe", ["--weight-decay", "-0.1"], "--weight-decay must be >= 0, got -0.1"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(tmp_path, capsys, no_work, command, extra, message):
    assert main(_args(tmp_path, command, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err


@pytest.mark.parametrize("command", ["knn", "linear-probe"])
def test_an_out_directory_is_refused_and_nothing_is_left(tmp_path, capsys, no_work, command):
    out = tmp_path / "report"
    out.mkdir()
    before = sorted(tmp_path.rglob("*"))
    assert main(_args(tmp_path, command, "--out", str(out))) == 2
    assert "is a directory" in capsys.readouterr().err
    assert sorted(tmp_path.rglob("*")) == before  # no .report.tmp, no run folder


@pytest.mark.parametrize(("flag", "expected"), [([], False), (["--resume"], True), (["--resume", "a.state.pt"], None)])
def test_pretrain_resume_takes_a_chosen_checkpoint(tmp_path, monkeypatch, flag, expected):
    seen = {}

    def train(run, *, resume):
        seen["resume"] = resume
        raise SystemExit(0)

    monkeypatch.setattr(vitzoo.train.recipe, "train_from_config", train)
    args = ["pretrain", "--config", str(RECIPE), "--set", f"data.root={tmp_path}", *flag]
    with pytest.raises(SystemExit):
        main(args)
    assert seen["resume"] == (expected if expected is not None else "a.state.pt")
