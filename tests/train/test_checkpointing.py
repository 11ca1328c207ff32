"""Checkpoint files: atomic writes, tensors-only state (weights_only), pruning, finding the latest, RNG round trip."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import vitzoo
from vitzoo.train.checkpointing import CheckpointManager, capture_rng, load_state, restore_rng, save_torch_atomic


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
