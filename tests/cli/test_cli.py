"""The ``vitzoo`` command: train / eval / export on a tiny real video dataset, errors, and the forwarded commands.

Reliability: what can be checked before training is refused with one line and status 2 (values out of range, bad
data options and annotation files, a device this machine lacks, a class count that does not fit), as are a run
directory in use, damaged checkpoints (naming the file and what to use instead), a checkpoint of another model,
an ONNX opset that is not written as asked, and exports onto a directory; a full disk stops training with one line
and status 1."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vitzoo
from tests.helpers import REPO_ROOT
from vitzoo.cli.main import main

RECIPE = REPO_ROOT / "configs" / "vivit_fact_enc_nano_motion.yaml"


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


# ------------------------------------------------------------------------------------------- reliability
def _error_line(capsys) -> str:
    """The single line a refused command prints (no traceback)."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("vitzoo ")]
    return line


@pytest.fixture(scope="module")
def bad_lists(motion):
    (motion / "empty.txt").write_text("# no videos listed\n\n")
    lines = (motion / "train.txt").read_text().splitlines()
    (motion / "bad_label.txt").write_text("\n".join([*lines[:-1], lines[-1].rsplit(" ", 1)[0] + " 7"]) + "\n")
    return motion


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lr=-1", "train.lr must be > 0, got -1"),
        ("train.label_smoothing=1.5", "train.label_smoothing must be in [0, 1), got 1.5"),
        ("data.frame_interval=0", "frame_interval=0"),
        ("data.train_scale=[2, 1]", "scale"),
        ("train.device=cuda:99", "train.device='cuda:99' but this machine has"),
        ("data.backend=ffmpeg", "data.backend"),
        ("model.num_classes=10", "has 4 classes (named) but the model has num_classes=10"),
        ("data.train=empty.txt", "empty.txt"),
        ("data.train=bad_label.txt", "out of range"),
    ],
)
def test_what_can_be_checked_before_training_is_one_line_and_status_2(bad_lists, tmp_path, capsys, override, message):
    assert main(["train", *_args(bad_lists, tmp_path / "run", override)]) == 2
    assert message in _error_line(capsys)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_run_directory_in_use_is_refused(motion, tmp_path, capsys):
    from vitzoo.train.lock import RunLock

    with RunLock(tmp_path):
        assert main(["train", *_args(motion, tmp_path)]) == 2
    assert f"is in use by another run (pid {os.getpid()} on host" in _error_line(capsys)


def test_resume_from_a_named_checkpoint_and_damaged_ones(motion, trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained["out"], run)
    ckpt = run / "checkpoints"
    newest = ckpt / "step_00000004.state.pt"
    newest.write_bytes(newest.read_bytes()[:1000])
    assert main(["train", *_args(motion, run, "train.epochs=2"), "--resume", str(newest)]) == 2
    assert "step_00000004.state.pt is truncated" in _error_line(capsys)

    step2 = ckpt / "step_00000002.safetensors"  # the checkpoints are those of the 2 epoch ends
    assert main(["train", *_args(motion, run, "train.epochs=2"), "--resume", str(step2)]) == 0
    assert sorted(p.name for p in (ckpt / "set_aside").iterdir()) == [
        "step_00000004.safetensors",
        "step_00000004.state.pt",
    ]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    keys = [(r["kind"], r["step"]) for r in records]
    assert sorted(keys) == sorted(set(keys)) and ("val", 4) in keys  # the second epoch redone, nothing logged twice

    for state in ckpt.glob("step_*.state.pt"):
        state.write_bytes(b"")
    assert main(["train", *_args(motion, run, "train.epochs=2"), "--resume"]) == 2
    line = _error_line(capsys)
    assert "step_00000002.state.pt is empty" in line and "step_00000004.state.pt is empty" in line


def test_a_full_disk_stops_training_with_one_line_and_status_1(motion, tmp_path, monkeypatch, capsys):
    import vitzoo.durable

    real = vitzoo.durable.write_chunk

    def full(f, data):  # every checkpoint write finds the disk full (the loggers' files go through the same writer)
        if Path(f.name).parent.name == "checkpoints":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(f, data)

    monkeypatch.setattr(vitzoo.durable, "write_chunk", full)
    assert main(["train", *_args(motion, tmp_path, "train.max_steps=1")]) == 1
    line = _error_line(capsys)
    assert "could not write checkpoint" in line and "No space left on device" in line
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == []


def test_eval_names_a_damaged_best_file_and_what_to_use_instead(motion, trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained["out"], run)
    best = run / "checkpoints" / "best.safetensors"
    best.write_bytes(best.read_bytes()[:-10])
    assert main(["eval", *_args(motion, run)]) == 2
    line = _error_line(capsys)
    instead = run / "checkpoints" / "step_00000004.safetensors"
    assert "best.safetensors is truncated" in line and f"--checkpoint {instead}" in line


def test_eval_refuses_a_checkpoint_of_another_model(motion, tmp_path, capsys):
    other = vitzoo.save(vitzoo.create("vivit_joint_nano_8x2", num_classes=4), tmp_path / "joint.safetensors")
    assert main(["eval", *_args(motion, tmp_path / "run"), "--checkpoint", str(other)]) == 2
    line = _error_line(capsys)
    assert "holds a vivit_joint_nano_8x2 model but the recipe trains vivit_fact_enc_nano_8x2" in line
    # the way out the message gives: name the model, and it is evaluated with this recipe's data
    argv = ["eval", *_args(motion, tmp_path / "run", "model.name=vivit_joint_nano_8x2"), "--checkpoint", str(other)]
    assert main(argv) == 0


def test_export_honours_the_opset_or_refuses_it(tmp_path, monkeypatch, capsys):
    import onnx

    export_module = sys.modules["vitzoo.export"]  # the attribute vitzoo.export is the function of that name
    base = ["export", "vit_nano_patch8_32", "--exporter", "torchscript"]
    assert main([*base, "--out", str(tmp_path / "a.onnx"), "--opset", "3"]) == 2
    assert "opset 3 is not supported: vitzoo models need opset >= 14" in _error_line(capsys)
    assert main([*base, "--out", str(tmp_path / "b.onnx"), "--opset", "14"]) == 0
    assert [o.version for o in onnx.load(str(tmp_path / "b.onnx")).opset_import if o.domain == ""] == [14]
    monkeypatch.setattr(export_module, "written_opset", lambda path: 18)  # as the dynamo exporter's silent fallback
    assert main([*base, "--out", str(tmp_path / "c.onnx"), "--opset", "15"]) == 2
    assert "wrote opset 18, not the requested 15" in _error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.onnx"]  # nothing else written, no temporary file


@pytest.mark.parametrize("out", ["model.onnx", "model.pt2", "model.safetensors"])
def test_export_onto_a_directory_is_refused(tmp_path, capsys, out):
    (tmp_path / out).mkdir()
    assert main(["export", "vit_nano_patch8_32", "--out", str(tmp_path / out)]) == 2
    assert "is an existing directory; give the file to write" in _error_line(capsys)
    assert [p.name for p in tmp_path.iterdir()] == [out] and not any((tmp_path / out).iterdir())
