"""Training checkpoints: model weights as safetensors, the rest of the training state as a tensors-only file.

A checkpoint at update ``step`` is two files in ``<run>/checkpoints/``:

* ``step_{step:08d}.safetensors``: the model weights with vitzoo's metadata (``vitzoo.load`` rebuilds the
  model from it alone, so any checkpoint can be evaluated or exported directly);
* ``step_{step:08d}.state.pt``: optimizer, scheduler, EMA weights, RNG states (as tensors), step, epoch,
  best metric; written with ``torch.save`` and read back with ``torch.load(weights_only=True)``: it holds
  only tensors, numbers, strings, lists and dicts, never pickled objects.

Both are written atomically (a temporary file, then ``os.replace``), weights first: a checkpoint counts
only once its state file exists, so a crash mid-save leaves the previous checkpoint as the latest. The
last ``keep_last`` checkpoints are kept; ``best.safetensors`` (the best validated weights) is kept apart.
"""

from __future__ import annotations

import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vitzoo.checkpoints.io import read_state_dict, save_state_dict

log = logging.getLogger(__name__)

STATE_FORMAT = 1
_STEP_FILE = re.compile(r"^step_(\d{8,})\.state\.pt$")


# ------------------------------------------------------------------------------------------- RNG
def capture_rng() -> dict[str, Any]:
    """The global RNG states of torch (CPU and CUDA), numpy and Python's ``random``, as tensors and numbers."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy_kind": str(np_kind),
        "numpy_keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
        "numpy_pos": int(np_pos),
        "numpy_has_gauss": int(np_has_gauss),
        "numpy_gauss": float(np_gauss),
        "python_version": int(py_version),
        "python_internal": torch.tensor(py_internal, dtype=torch.int64),
        "python_gauss": float("nan") if py_gauss is None else float(py_gauss),
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        if not torch.cuda.is_available():
            log.warning("the checkpoint has CUDA RNG states but CUDA is not available; not restored")
        else:
            torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(
        (
            state["numpy_kind"],
            state["numpy_keys"].numpy().astype(np.uint32),
            state["numpy_pos"],
            state["numpy_has_gauss"],
            state["numpy_gauss"],
        )
    )
    gauss = state["python_gauss"]
    internal = tuple(int(v) for v in state["python_internal"].tolist())
    random.setstate((state["python_version"], internal, None if gauss != gauss else gauss))


def seed_everything(seed: int) -> None:
    """Seed torch (all devices), numpy's and Python's global RNGs."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


# ------------------------------------------------------------------------------------------- files
def save_torch_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then ``os.replace`` onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``*.state.pt`` file with ``weights_only=True`` and check its format version."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"{path} is not a vitzoo training state file (format {STATE_FORMAT})")
    return state


class CheckpointManager:
    """Writes, lists, prunes and finds the checkpoints of one run directory (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike, *, keep_last: int = 2) -> None:
        if keep_last < 1:
            raise ValueError(f"keep_last must be >= 1, got {keep_last}")
        self.directory = Path(directory)
        self.keep_last = keep_last

    @staticmethod
    def weights_path_for(state_path: Path) -> Path:
        """The weights file that belongs to a ``step_*.state.pt`` file."""
        return state_path.with_name(state_path.name.replace(".state.pt", ".safetensors"))

    def paths(self, step: int) -> tuple[Path, Path]:
        """``(weights, state)`` paths of the checkpoint at ``step``."""
        stem = self.directory / f"step_{step:08d}"
        return stem.with_suffix(".safetensors"), stem.with_suffix(".state.pt")

    def list(self) -> list[tuple[int, Path]]:
        """Complete checkpoints (state and weights present), ``[(step, state path), ...]`` by step."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            match = _STEP_FILE.match(path.name)
            if match and self.weights_path_for(path).is_file():
                found.append((int(match[1]), path))
        return sorted(found)

    def latest(self) -> Path | None:
        """State file of the most recent complete checkpoint, or None."""
        found = self.list()
        return found[-1][1] if found else None

    def save(
        self,
        *,
        step: int,
        weights: dict[str, torch.Tensor],
        state: dict[str, Any],
        metadata: dict[str, str],
    ) -> Path:
        """Write the checkpoint at ``step`` (weights, then state), prune old ones, return the state path."""
        weights_path, state_path = self.paths(step)
        save_state_dict(weights, weights_path, metadata={**metadata, "vitzoo.step": str(step)})
        save_torch_atomic({"format": STATE_FORMAT, **state}, state_path)
        self.prune()
        return state_path

    def prune(self) -> None:
        """Delete all but the last ``keep_last`` checkpoints (state file first, so a half-deleted one is ignored)."""
        for _, state_path in self.list()[: -self.keep_last]:
            state_path.unlink(missing_ok=True)
            self.weights_path_for(state_path).unlink(missing_ok=True)

    def save_best(self, weights: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
        """Write ``best.safetensors`` (atomically)."""
        return save_state_dict(weights, self.directory / "best.safetensors", metadata=metadata)

    def load(self, state_path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """``(weights, state)`` of the checkpoint whose state file is ``state_path``."""
        state_path = Path(state_path)
        weights_path = self.weights_path_for(state_path)
        if not weights_path.is_file():
            raise FileNotFoundError(f"checkpoint {state_path} has no weights file {weights_path.name}")
        return read_state_dict(weights_path), load_state(state_path)
