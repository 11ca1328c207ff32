"""Checkpoint files: atomic writes, tensors-only state (weights_only), pruning, finding the latest, RNG round trip;
damaged files (empty, truncated, zeros) detected and skipped on resume; what interrupted saves and prunes leave
removed by the next save; a full disk (a write raising ENOSPC) and a short write that raises nothing refused with one
line, the previous checkpoint left intact."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import vitzoo
import vitzoo.durable
import vitzoo.train.checkpointing
from tests.helpers.training import disk_full_after
from vitzoo.durable import DamagedFileError, check_safetensors
from vitzoo.train.checkpointing import (
    CheckpointManager,
    capture_rng,
    load_state,
    restore_rng,
    save_torch_atomic,
    save_weights_atomic,
)
from vitzoo.train.errors import CheckpointReadError, CheckpointWriteError


def _draws() -> tuple:
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), np.random.randn(), [random.random() for _ in range(3)]


def test_rng_round_trip_through_a_weights_only_file(tmp_path):
    np.random.randn()  # leaves a cached gaussian in numpy's state
    random.gauss(0, 1)  # and in Python's
    state = capture_rng()
    expected = _draws()
    save_torch_atomic(state, tmp_path / "rng.pt")
    _draws()  # move every generator on
    restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert _draws() == expected


def _weights(step: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((2, 2), step)}


def test_manager_keeps_last_n_and_finds_latest(tmp_path):
    ckpt = CheckpointManager(tmp_path / "ckpt", keep_last=2)
    assert ckpt.latest() is None
    for step in (1, 2, 3):
        ckpt.save(step=step, weights=_weights(step), state={"step": step}, metadata={})
    assert [s for s, _ in ckpt.list()] == [2, 3]
    assert sorted(p.name for p in ckpt.directory.iterdir()) == [
        "step_00000002.safetensors",
        "step_00000002.state.pt",
        "step_00000003.safetensors",
        "step_00000003.state.pt",
    ]
    weights, state = ckpt.load(ckpt.latest())
    assert state["step"] == 3 and torch.equal(weights["w"], _weights(3)["w"])
    assert torch.load(ckpt.latest(), weights_only=True)["step"] == 3  # loadable without unpickling objects


def test_incomplete_checkpoints_are_ignored(tmp_path):
    ckpt = CheckpointManager(tmp_path, keep_last=5)
    ckpt.save(step=1, weights=_weights(1), state={}, metadata={})
    weights2, state3 = ckpt.paths(2)[0], ckpt.paths(3)[1]
    weights2.write_bytes(b"weights written, state never came")
    save_torch_atomic({"format": 1}, state3)  # a state file whose weights are missing
    (tmp_path / ".step_00000004.state.pt.tmp").write_bytes(b"half written")
    assert ckpt.latest() == ckpt.paths(1)[1]


def test_weights_file_is_a_loadable_vitzoo_model(tmp_path):
    from vitzoo.checkpoints.io import model_metadata

    model = vitzoo.create("vivit_joint_nano_8x2", num_classes=3)
    ckpt = CheckpointManager(tmp_path)
    state_path = ckpt.save(step=7, weights=model.state_dict(), state={}, metadata=model_metadata(model))
    reloaded = vitzoo.load(CheckpointManager.weights_path_for(state_path))
    assert all(torch.equal(v, reloaded.state_dict()[k]) for k, v in model.state_dict().items())


def test_state_file_format_is_checked(tmp_path):
    torch.save({"step": 1}, tmp_path / "x.state.pt")
    with pytest.raises(ValueError, match="not a vitzoo training state"):
        load_state(tmp_path / "x.state.pt")


# ------------------------------------------------------------------------------------------- damage and faults
def _truncate(path, fraction: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


DAMAGE = {
    "empty": lambda p: p.write_bytes(b""),
    "truncated": _truncate,
    "cut at the last byte": lambda p: p.write_bytes(p.read_bytes()[:-1]),
    "zeros": lambda p: p.write_bytes(bytes(p.stat().st_size)),  # what a power cut can leave on some file systems
}


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("suffix", [".safetensors", ".state.pt"])
def test_a_damaged_file_is_detected_and_resume_falls_back(tmp_path, caplog, damage, suffix):
    ckpt = CheckpointManager(tmp_path, keep_last=3)
    for step in (1, 2, 3):
        ckpt.save(step=step, weights=_weights(step), state={"step": step}, metadata={})
    victim = ckpt.paths(3)[0 if suffix == ".safetensors" else 1]
    DAMAGE[damage](victim)
    with caplog.at_level("WARNING", logger="vitzoo.train.checkpointing"):
        path, weights, state = ckpt.load_latest()
    assert path == ckpt.paths(2)[1] and state["step"] == 2 and torch.equal(weights["w"], _weights(2)["w"])
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith("skipping checkpoint step_00000003.state.pt") and victim.name in warning
    with pytest.raises(CheckpointReadError, match=victim.name):  # asked for by name: no fallback, the file named
        ckpt.load(ckpt.paths(3)[1])


def test_no_readable_checkpoint_names_every_file(tmp_path):
    ckpt = CheckpointManager(tmp_path, keep_last=3)
    for step in (1, 2):
        ckpt.save(step=step, weights=_weights(step), state={"step": step}, metadata={})
    _truncate(ckpt.paths(1)[1])
    ckpt.paths(2)[0].write_bytes(b"")
    with pytest.raises(CheckpointReadError) as info:
        ckpt.load_latest()
    message = str(info.value)
    assert "step_00000001.state.pt is truncated" in message and "step_00000002.safetensors is empty" in message
    assert "\n" not in message
    with pytest.raises(FileNotFoundError, match="only incomplete files: step_00000009.safetensors"):
        empty = CheckpointManager(tmp_path / "other")
        empty.directory.mkdir()
        (empty.directory / "step_00000009.safetensors").write_bytes(b"x")
        empty.load_latest()


def test_check_safetensors_accepts_complete_files_only(tmp_path):
    path = tmp_path / "w.safetensors"
    tensors = {"a": torch.randn(3, 4), "b": torch.zeros(2, dtype=torch.bfloat16)}
    save_weights_atomic(tensors, path, {"k": "v"})
    check_safetensors(path, tensors)  # negative control: the complete file passes
    with pytest.raises(DamagedFileError, match="does not hold the tensors"):
        check_safetensors(path, {"a": torch.randn(3, 4)})
    data = path.read_bytes()
    for cut in (0, 4, 8, 20, len(data) - 48, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(DamagedFileError):
            check_safetensors(path)
    path.write_bytes(data + b"\0")
    with pytest.raises(DamagedFileError, match="longer than its header"):
        check_safetensors(path)


def test_interrupted_saves_and_prunes_leave_nothing_behind_after_the_next_save(tmp_path):
    ckpt = CheckpointManager(tmp_path, keep_last=2)
    for step in (1, 2):
        ckpt.save(step=step, weights=_weights(step), state={"step": step}, metadata={})
    ckpt.paths(1)[1].unlink()  # a kill in the middle of pruning step 1: its state went, its weights stayed
    ckpt.paths(4)[0].write_bytes(b"weights of a save killed before its state file")
    (tmp_path / ".step_00000004.state.pt.tmp").write_bytes(b"half a state file")
    (tmp_path / ".best.safetensors.tmp").write_bytes(b"half a best file")
    assert ckpt.load_latest()[0] == ckpt.paths(2)[1]
    ckpt.save(step=3, weights=_weights(3), state={"step": 3}, metadata={})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "step_00000002.safetensors",
        "step_00000002.state.pt",
        "step_00000003.safetensors",
        "step_00000003.state.pt",
    ]


@pytest.mark.parametrize(
    ("failing", "name"),
    [("weights", ".step_00000002.safetensors"), ("state", ".step_00000002.state.pt"), ("best", ".best")],
)
def test_a_full_disk_fails_with_one_line_and_keeps_the_previous_files(tmp_path, monkeypatch, failing, name):
    ckpt = CheckpointManager(tmp_path, keep_last=2)
    ckpt.save(step=1, weights=_weights(1), state={"step": 1}, metadata={})
    ckpt.save_best(_weights(1), {"vitzoo.step": "1"})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.setattr(vitzoo.durable, "write_chunk", disk_full_after(100, name))
    with pytest.raises(CheckpointWriteError) as info:
        if failing == "best":
            ckpt.save_best(_weights(2), {"vitzoo.step": "2"})
        else:
            ckpt.save(step=2, weights=_weights(2), state={"step": 2}, metadata={})
    message = str(info.value)
    assert "[Errno 28] No space left on device" in message and "\n" not in message  # not torch's "unexpected pos"
    assert ("best.safetensors is intact" if failing == "best" else "step_00000001.state.pt is intact") in message
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing half-written, nothing lost
    monkeypatch.undo()
    _, _, state = ckpt.load_latest()
    assert state["step"] == 1


@pytest.mark.parametrize("failing", ["weights", "state"])
def test_a_short_write_that_raises_nothing_is_refused(tmp_path, monkeypatch, failing):
    """A file system that reports success for a write it cut short: the read-back check catches it, and the previous
    file stays. Without the check the short file would replace it (the negative control)."""
    real = vitzoo.durable.write_chunk
    suffix = ".safetensors.tmp" if failing == "weights" else ".state.pt.tmp"

    def short(f, data):
        if not f.name.endswith(suffix):
            return real(f, data)
        real(f, bytes(data)[: int(len(data) * 0.9)])
        return len(data)

    ckpt = CheckpointManager(tmp_path, keep_last=2)
    ckpt.save_best(_weights(1), {})
    ckpt.save(step=1, weights=_weights(1), state={"step": 1}, metadata={})
    monkeypatch.setattr(vitzoo.durable, "write_chunk", short)
    with pytest.raises(CheckpointWriteError, match="truncated"):
        ckpt.save(step=2, weights=_weights(2), state={"step": 2}, metadata={})
    if failing == "weights":
        with pytest.raises(CheckpointWriteError, match="truncated"):
            ckpt.save_best(_weights(2), {})
        check_safetensors(ckpt.best_path, _weights(1))
    assert [s for s, _ in ckpt.list()] == [1]
    monkeypatch.setattr(vitzoo.train.checkpointing, "check_torch_zip", lambda path: None)  # without the checks
    monkeypatch.setattr(vitzoo.train.checkpointing, "check_safetensors", lambda path, expected=None: None)
    ckpt.save(step=2, weights=_weights(2), state={"step": 2}, metadata={})
    assert [s for s, _ in ckpt.list()] == [1, 2]  # the damaged checkpoint took its place
    with pytest.raises(CheckpointReadError):
        ckpt.load(ckpt.paths(2)[1])
