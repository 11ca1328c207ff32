"""The CLI fault matrix: every ``vitzoo`` subcommand x a table of bad inputs.

Each row runs one command line in-process (``vitzoo.cli.main.main(argv)``, stderr captured; one more as a
subprocess, marked slow, to see the real streams) and asserts what docs/reliability.md promises: exit status 2,
one error line on stderr that names the problem (``vitzoo COMMAND: error: ...``), no traceback, no file left
behind, and a refusal before any expensive work (a generous time box). The subcommands are read from the CLI's
parser: a new subcommand fails :func:`test_every_subcommand_has_rows` until it gets rows here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import vitzoo
from tests.helpers import REPO_ROOT
from vitzoo.cli.main import build_parser, main

NANO = REPO_ROOT / "configs" / "vivit_fact_enc_nano_motion.yaml"  # classification, vivit_fact_enc_nano_8x2
SIMCLR = REPO_ROOT / "configs" / "simclr_vivit_joint_micro_motion.yaml"  # self-supervised, vivit_joint_micro_4x2
TIME_BOX_S = 30.0  # a refusal comes before any training, feature extraction, export or decoding of a dataset
PICKLE_RAN = "pickle_code_ran"  # the file the malicious pickle would create


class _Malicious:
    """Unpickling this creates the file ``PICKLE_RAN`` in the working directory: it must never happen."""

    def __reduce__(self):
        return (open, (PICKLE_RAN, "w"))


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    """The inputs every row draws from (module scope: made once)."""
    from vitzoo.data import make_motion_dataset

    root = tmp_path_factory.mktemp("faults")
    motion = root / "motion"
    make_motion_dataset(motion, num_train=4, num_val=4, num_frames=12, size=32, progress=False)
    files = root / "files"
    files.mkdir()
    other = vitzoo.save(vitzoo.create("swin_nano_patch4_window4_32"), files / "swin.safetensors")  # another model
    image = vitzoo.save(vitzoo.create("vit_nano_patch8_32", num_classes=4), files / "vit.safetensors")
    clip_model = vitzoo.save(vitzoo.create("vivit_fact_enc_nano_8x2", num_classes=4), files / "vivit.safetensors")
    data = image.read_bytes()
    (files / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    (files / "text.safetensors").write_text("these are not weights\n")
    save_file({"w": torch.ones(2)}, str(files / "bare.safetensors"))  # no vitzoo config in its metadata
    torch.save({"model": {"w": torch.ones(2)}, "x": _Malicious()}, files / "code.pth")
    (files / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    (files / "blocker").write_text("a file where a folder is needed\n")
    run = root / "run_with_checkpoints" / "checkpoints"  # a run that holds a (complete-looking) checkpoint
    run.mkdir(parents=True)
    (run / "step_00000001.state.pt").write_bytes(b"")
    (run / "step_00000001.safetensors").write_bytes(b"")
    (run.parent / "run.lock").write_bytes(b"")  # a real run leaves its (released, empty) lock file
    (root / "existing_dir").mkdir()
    video = next(motion.rglob("*.mp4"))
    values = {
        "motion": motion,
        "files": files,
        "other": other,
        "image": image,
        "clip_model": clip_model,
        "video": video,
        "existing_run": run.parent,
        "existing_dir": root / "existing_dir",
        "blocker": files / "blocker",
        "nano": NANO,
        "simclr": SIMCLR,
    }
    return {k: str(v) for k, v in values.items()}


def _recipe(recipe: str, out: str, *extra: str) -> list[str]:
    overrides = ["data.root={motion}", f"output_dir={out}", "train.batch_size=4", "train.num_workers=0",
                 "train.progress=false", *extra]  # fmt: skip
    return ["--config", recipe, *[a for o in overrides for a in ("--set", o)]]


CKPT = {  # a bad checkpoint, and the words its error line must contain
    "missing": ("{files}/missing.safetensors", "missing.safetensors"),
    "truncated": ("{files}/truncated.safetensors", "truncated"),
    "wrong-kind": ("{files}/text.safetensors", "text.safetensors"),
    "pickled-code": ("{files}/code.pth", "code.pth"),  # "contains code" where a pickle is read, else "not safetensors"
    "bad-hub-name": ("hf-hub:bad name/x y", "bad name/x y"),
}


@dataclass(frozen=True)
class Row:
    """One bad input given to one subcommand: ``argv`` (``{name}`` filled from ``fx``, ``{out}`` a fresh path)."""

    command: str
    fault: str
    argv: tuple[str, ...]
    words: str  # what the one error line must name (case-insensitive)
    mark: pytest.MarkDecorator | None = None
    usage: bool = False  # a forwarded command's own argparse parser: its usage lines come before the error line

    def param(self):
        return pytest.param(self, id=f"{self.command}-{self.fault}", marks=() if self.mark is None else (self.mark,))


def _checkpoint_rows(command: str, argv) -> list[Row]:
    """The checkpoint faults for a command that takes a checkpoint where ``argv(path)`` puts it."""
    rows = [Row(command, kind, tuple(argv(path)), words) for kind, (path, words) in CKPT.items()]
    return rows


def _rows() -> list[Row]:
    rows: list[Row] = []
    # train: model.pretrained, distillation's teacher, numbers, outputs
    rows += _checkpoint_rows("train", lambda p: ["train", *_recipe("{nano}", "{out}", f"model.pretrained={p}")])
    rows += [
        Row("train", "unfitting-checkpoint", ("train", *_recipe("{nano}", "{out}", "model.pretrained={other}")),
            "swin.safetensors"),
        Row("train", "teacher-truncated",
            ("train", *_recipe("{nano}", "{out}", "task.name=distill", "task.options={{}}",
                               "task.options.teacher={files}/truncated.safetensors")), "truncated"),
        Row("train", "teacher-unfitting",
            ("train", *_recipe("{nano}", "{out}", "task.name=distill", "task.options={{}}",
                               "task.options.teacher={other}")), "teacher"),
        Row("train", "bad-number", ("train", *_recipe("{nano}", "{out}", "train.lr=-1")), "train.lr"),
        Row("train", "existing-output", ("train", *_recipe("{nano}", "{existing_run}")), "already holds checkpoints"),
        Row("train", "unwritable-output", ("train", *_recipe("{nano}", "{blocker}/run")), "blocker"),
    ]  # fmt: skip
    # pretrain
    rows += _checkpoint_rows("pretrain", lambda p: ["pretrain", *_recipe("{simclr}", "{out}", f"model.pretrained={p}")])
    rows += [
        Row("pretrain", "bad-number", ("pretrain", *_recipe("{simclr}", "{out}", "train.epochs=0")), "train.epochs"),
        Row("pretrain", "existing-output", ("pretrain", *_recipe("{simclr}", "{existing_run}")), "already holds"),
        Row("pretrain", "unwritable-output", ("pretrain", *_recipe("{simclr}", "{blocker}/run")), "blocker"),
    ]
    # eval
    rows += _checkpoint_rows("eval", lambda p: ["eval", *_recipe("{nano}", "{out}"), "--checkpoint", p])
    rows += [
        Row("eval", "unfitting-checkpoint", ("eval", *_recipe("{nano}", "{out}"), "--checkpoint", "{other}"),
            "swin.safetensors"),
        Row("eval", "bad-number", ("eval", *_recipe("{nano}", "{out}", "data.eval_clips=0"), "--checkpoint",
                                   "{image}"), "eval_clips"),
    ]  # fmt: skip
    # knn / linear-probe
    for cmd, number in (("knn", ("--k", "0")), ("linear-probe", ("--epochs", "0"))):
        rows += _checkpoint_rows(cmd, lambda p, cmd=cmd: [cmd, *_recipe("{simclr}", "{out}"), "--checkpoint", p])
        rows += [  # (no unfitting row: knn and linear-probe evaluate the checkpoint's own model, whatever it is)
            Row(cmd, "bad-number", (cmd, *_recipe("{simclr}", "{out}"), "--random-init", *number), number[0][2:]),
            Row(cmd, "existing-output", (cmd, *_recipe("{simclr}", "{out}"), "--random-init", "--out",
                                         "{existing_dir}"), "existing_dir"),
        ]  # fmt: skip
    # export
    rows += _checkpoint_rows("export", lambda p: ["export", p, "--out", "{out}.safetensors"])
    rows += [
        Row("export", "no-config-checkpoint", ("export", "{files}/bare.safetensors", "--out", "{out}.onnx"), "bare"),
        Row("export", "bad-number", ("export", "{image}", "--batch-size", "0", "--out", "{out}.onnx"), "batch"),
        Row("export", "existing-output", ("export", "{image}", "--out", "{existing_dir}"), "existing_dir"),
        Row("export", "unwritable-output", ("export", "{image}", "--out", "{blocker}/m.onnx"), "blocker"),
        Row("export", "bad-model-name", ("export", "vit_nano_patch8_3", "--out", "{out}.onnx"), "vit_nano_patch8_3"),
    ]
    # predict
    rows += _checkpoint_rows("predict", lambda p: ["predict", "--checkpoint", p, "{video}"])
    rows += [
        Row("predict", "unreadable-video", ("predict", "--checkpoint", "{clip_model}", "{files}/broken.mp4"),
            "broken.mp4 could not be read: cannot decode"),
        Row("predict", "bad-number", ("predict", "--checkpoint", "{clip_model}", "--topk", "0", "{video}"), "topk"),
        Row("predict", "missing-input", ("predict", "--checkpoint", "{clip_model}", "{files}/nothing.mp4"),
            "nothing.mp4 could not be read"),
        Row("predict", "unwritable-output", ("predict", "--checkpoint", "{clip_model}", "{video}", "--out",
                                             "{blocker}/p.jsonl"), "blocker"),
    ]  # fmt: skip
    # data check / prepare
    rows += [
        Row("data", "check-missing-root", ("data", "check", "--layout", "folders", "--root", "{files}/none"), "none"),
        Row("data", "check-bad-number", ("data", "check", "--config", "{nano}", "--set", "data.root={motion}",
                                         "--workers", "-1"), "workers"),
        Row("data", "prepare-missing-root", ("data", "prepare", "--root", "{files}/none", "--out", "{out}"), "none"),
        Row("data", "prepare-bad-number", ("data", "prepare", "--root", "{motion}", "--out", "{out}",
                                           "--short-side", "0"), "short"),
        Row("data", "prepare-unwritable-output", ("data", "prepare", "--root", "{motion}", "--out",
                                                  "{blocker}/copy"), "blocker"),
    ]  # fmt: skip
    # models, bench, demo
    rows += [
        Row("models", "no-match", ("models", "nothing_*"), "no model matches"),
        Row("models", "bad-argument", ("models", "--nope"), "--nope"),
        Row("bench", "bad-choice", ("bench", "--suite", "nosuch"), "nosuch", usage=True),
        Row("bench", "bad-number", ("bench", "--suite", "quick", "--min-reps", "0"), "--min-reps"),
        Row("bench", "missing-input", ("bench", "--report-only", "{files}/none.json"), "none.json"),
        Row("demo", "bad-argument", ("demo", "--nope"), "--nope", usage=True),
    ]
    return rows


ROWS = _rows()


def _fill(row: Row, fx: dict[str, str], out: Path) -> list[str]:
    return [a.format(**fx, out=out) for a in row.argv]


def _tree(*roots: str | Path) -> set[str]:
    return {str(p) for r in roots for p in Path(r).rglob("*")}


def test_every_subcommand_has_rows():
    """A new subcommand of the CLI must get rows here (and the table names no command the CLI lacks)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    commands = set(sub.choices)
    covered = {row.command for row in ROWS}
    assert commands - covered == set(), f"add fault-matrix rows for: {sorted(commands - covered)}"
    assert covered - commands == set()
    takes_checkpoints = {"train", "pretrain", "eval", "knn", "linear-probe", "export", "predict"}
    for command in takes_checkpoints:
        assert {r.fault for r in ROWS if r.command == command} >= set(CKPT), command


@pytest.mark.parametrize("row", [r.param() for r in ROWS])
def test_fault(row: Row, fx, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    argv = _fill(row, fx, out)
    before = _tree(fx["files"], fx["motion"], Path(fx["existing_run"]).parent, tmp_path)
    start = time.perf_counter()
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse
        status = exc.code
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    if row.usage:  # argparse's "usage: ..." (and its wrapped lines) before the one error line
        lines = lines[-1:]
    assert "Traceback" not in err, err
    assert status == 2, err
    assert len(lines) == 1, err
    assert row.words.lower() in lines[0].lower(), lines[0]
    assert lines[0].startswith("vitzoo"), lines[0]
    assert _tree(fx["files"], fx["motion"], Path(fx["existing_run"]).parent, tmp_path) == before
    assert not (tmp_path / PICKLE_RAN).exists()
    assert elapsed < TIME_BOX_S, f"{elapsed:.1f} s: the refusal came after expensive work"


@pytest.mark.slow  # a fresh interpreter importing torch: 5-40 s on the shared 2-core machine
@pytest.mark.parametrize(
    "argv, words",
    [(["train", *_recipe("{nano}", "{out}", "model.pretrained={files}/code.pth")], "contains code (io.open)")],
    ids=["train-pickled-code"],
)
def test_fault_in_a_subprocess(argv, words, fx, tmp_path):
    """The real streams of the console command: one error line (log lines aside), status 2, no traceback."""
    argv = [a.format(**fx, out=tmp_path / "out") for a in argv]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    before = _tree(fx["files"], fx["motion"])
    done = subprocess.run(
        [sys.executable, "-m", "vitzoo.cli.main", *argv], capture_output=True, text=True, env=env, cwd=tmp_path,
        timeout=120,
    )  # fmt: skip
    errors = [line for line in done.stderr.splitlines() if line.startswith("vitzoo ")]
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(errors) == 1 and words in errors[0], done.stderr
    assert list(tmp_path.iterdir()) == [] and _tree(fx["files"], fx["motion"]) == before
