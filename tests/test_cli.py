"""The ``vitzoo`` command: train / eval / export on a tiny real video dataset, errors, and the forwarded commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vitzoo
from vitzoo.cli.main import main

RECIPE = Path(__file__).parents[1] / "configs" / "vivit_fact_enc_nano_motion.yaml"


@pytest.fixture(scope="module")
def motion(tmp_path_factory):
    """8 training + 4 validation mp4 files (12 frames, 32 px) written by vitzoo.data."""
    from vitzoo.data import make_motion_dataset

    root = tmp_path_factory.mktemp("motion")
    make_motion_dataset(root, num_train=8, num_val=4, num_frames=12, size=32, progress=False)
    return root


def _args(motion: Path, out: Path, *extra: str) -> list[str]:
    overrides = [
        f"data.root={motion}",
        f"output_dir={out}",
        "train.batch_size=4",
        "train.num_workers=0",
        "train.progress=false",
        "train.eval_every=1",
        "train.log_every=1",
        *extra,
    ]
    return ["--config", str(RECIPE), *[a for o in overrides for a in ("--set", o)]]


@pytest.fixture(scope="module")
def trained(motion, tmp_path_factory):
    """A run of the nano recipe stopped after 1 update (max_steps), then resumed to the end of its 2 epochs."""
    out = tmp_path_factory.mktemp("run")
    first = main(["train", *_args(motion, out, "train.epochs=2", "train.max_steps=1")])
    steps_after_first = sorted(p.name for p in (out / "checkpoints").glob("step_*.state.pt"))
    second = main(["train", *_args(motion, out, "train.epochs=2"), "--resume"])
    return {"out": out, "status": (first, second), "steps_after_first": steps_after_first}


def test_train_then_resume(trained):
    out = trained["out"]
    assert trained["status"] == (0, 0)
    assert trained["steps_after_first"] == ["step_00000001.state.pt"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4]  # 8 clips / 4 per step, 2 epochs
    assert [r["num_samples"] for r in records if r["kind"] == "val"] == [4, 4]
    assert (out / "config.yaml").is_file() and (out / "training_curves.png").is_file()
    assert (out / "checkpoints" / "best.safetensors").is_file()


def test_train_refuses_to_overwrite_a_run(motion, trained, capsys):
    assert main(["train", *_args(motion, trained["out"])]) == 2
    assert "--resume" in capsys.readouterr().err


def test_eval_multi_view(motion, trained, capsys):
    out = trained["out"]
    assert main(["eval", *_args(motion, out, "data.eval_clips=3")]) == 0
    assert "(4 videos x 3 views)" in capsys.readouterr().out
    report = json.loads((out / "eval" / "best" / "eval.json").read_text())
    assert report["num_views"] == 3 and report["classes"] == ["left", "right", "up", "down"]
    assert (out / "eval" / "best" / "confusion_matrix.png").is_file()


def test_export_a_checkpoint_to_onnx(trained, tmp_path, capsys):
    best = trained["out"] / "checkpoints" / "best.safetensors"
    onnx_path = tmp_path / "model.onnx"
    assert main(["export", str(best), "--out", str(onnx_path), "--exporter", "torchscript", "--check"]) == 0
    printed = capsys.readouterr().out
    assert "max |onnxruntime - pytorch|" in printed
    assert float(printed.rsplit("=", 1)[1]) <= 1e-4


def test_export_a_registered_name(tmp_path, capsys):
    path = tmp_path / "m.safetensors"
    assert main(["export", "vivit_joint_nano_8x2", "--set", "num_classes=3", "--out", str(path), "--check"]) == 0
    assert "identical" in capsys.readouterr().out
    assert vitzoo.load(path).cfg.num_classes == 3
    assert main(["export", "vivit_joint_nano_8x2", "--format", "torch-export", "--out", str(tmp_path / "m.pt2")]) == 0
    assert torch.export.load(str(tmp_path / "m.pt2")) is not None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "vivit_joint_nano", "--out", "x.onnx"], "did you mean vivit_joint_nano_8x2"),
        (["export", "vivit_joint_nano_8x2", "--out", "x.tflite"], "use a suffix"),
        (["export", "vivit_joint_nano_8x2", "--format", "onnx", "--out", "x.pt2"], "writes .onnx files"),
        (["export", "vivit_joint_nano_8x2", "--set", "num_clases=3", "--out", "x.onnx"], "did you mean num_classes"),
        (["export", "missing.safetensors", "--out", "x.onnx"], "no such file"),
        (["train", "--config", str(RECIPE), "--set", "train.lrr=1"], "did you mean train.lr"),
        (["train", "--config", str(RECIPE), "--set", "model.options.drop_pth_rate=1"], "drop_path_rate"),
        (["train", "--config", "nope.yaml"], "no config file"),
        (["models", "nothing_*"], "no model matches"),
    ],
)
def test_user_errors_are_one_line_with_status_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_models_lists_names(capsys):
    assert main(["models", "*nano*"]) == 0
    assert capsys.readouterr().out.split() == vitzoo.list_models("*nano*")


def test_demo_and_bench_forward_their_arguments(monkeypatch):
    import vitzoo.bench.cli
    import vitzoo.demo

    calls = []
    monkeypatch.setattr(vitzoo.bench.cli, "main", lambda argv: calls.append(("bench", argv)) or 0)
    monkeypatch.setattr(vitzoo.demo, "main", lambda argv: calls.append(("demo", argv)) or 3, raising=False)
    assert main(["bench", "--suite", "quick", "--no-memory"]) == 0
    assert main(["demo", "--fast"]) == 3
    assert calls == [("bench", ["--suite", "quick", "--no-memory"]), ("demo", ["--fast"])]


@pytest.mark.slow
def test_module_entry_point():
    done = subprocess.run(
        [sys.executable, "-m", "vitzoo.cli.main", "models", "vit_nano*"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.split() == ["vit_nano_patch8_32"]
