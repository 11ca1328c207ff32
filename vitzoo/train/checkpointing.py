"""Training checkpoints: model weights as safetensors, the rest of the training state as a tensors-only file.

A checkpoint at update ``step`` is two files in ``<run>/checkpoints/``:

* ``step_{step:08d}.safetensors``: the model weights with vitzoo's metadata (``vitzoo.load`` rebuilds the
  model from it alone, so any checkpoint can be evaluated or exported directly);
* ``step_{step:08d}.state.pt``: optimizer, scheduler, EMA weights, RNG states (as tensors), step, epoch,
  best metric; written with ``torch.save`` and read back with ``torch.load(weights_only=True)``: it holds
  only tensors, numbers, strings, lists and dicts, never pickled objects.

Both are written atomically and verified (:mod:`vitzoo.durable`: a temporary file, fsync, read back,
then ``os.replace``), weights first: a checkpoint counts only once its state file exists, so a crash, a kill
or a full disk mid-save leaves the previous checkpoint as the latest, and a write that fails raises
:class:`~vitzoo.train.errors.CheckpointWriteError` naming the file, the cause and the intact checkpoint. The
last ``keep_last`` checkpoints are kept; ``best.safetensors`` (the best validated weights) is kept apart and
written the same way. What an interrupted save or prune leaves (weights without a state file, temporary files)
is removed by the next save (:meth:`CheckpointManager.clean`).

Reading checks both files before loading them: :meth:`CheckpointManager.load_latest` (``--resume``) takes the
newest checkpoint that reads back, logs each newer one it skips and why (empty, truncated, not a checkpoint),
and :meth:`CheckpointManager.load` names the damaged file. Checkpoints that cannot be read, or that a resume
from an earlier step leaves behind, are moved to ``<run>/checkpoints/set_aside/``, out of the way of pruning.
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
from safetensors.torch import save as serialize_safetensors

from vitzoo.checkpoints.io import read_state_dict
from vitzoo.durable import DamagedFileError, check_safetensors, check_torch_zip, write_atomic
from vitzoo.errors import InputNotFoundError
from vitzoo.train.errors import CheckpointReadError, CheckpointWriteError

log = logging.getLogger(__name__)

STATE_FORMAT = 1
BEST_NAME = "best.safetensors"
SET_ASIDE = "set_aside"  # checkpoints that could not be read, or that a resume from an earlier step abandoned
_STEP_FILE = re.compile(r"^step_(\d{8,})\.state\.pt$")
_WEIGHTS_FILE = re.compile(r"^step_(\d{8,})\.safetensors$")


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
    """``torch.save`` through :func:`~vitzoo.durable.write_atomic` (checked as a complete zip archive)."""
    return write_atomic(path, lambda f: torch.save(obj, f), check_torch_zip)


def save_weights_atomic(weights: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str]) -> Path:
    """Weights as safetensors (with vitzoo's metadata) through :func:`~vitzoo.durable.write_atomic`, checked
    to hold exactly these tensors before it replaces ``path``. The file is serialised in memory first (a
    transient copy of the weights), so that every byte goes through one writer."""
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in weights.items()}  # clone: no shared storage
    data = serialize_safetensors(tensors, metadata={"format": "pt", **metadata})
    expected = {k: torch.empty(v.shape, dtype=v.dtype, device="meta") for k, v in tensors.items()}  # shapes only
    del tensors
    return write_atomic(path, lambda f: f.write(data), lambda tmp: check_safetensors(tmp, expected))


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``*.state.pt`` file with ``weights_only=True`` and check its format version."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"{path} is not a vitzoo training state file (format {STATE_FORMAT})")
    return state


def check_weights_file(path: str | os.PathLike) -> None:
    """Raise :class:`CheckpointReadError` (naming the file and what is wrong) unless ``path`` is a complete
    safetensors file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointReadError(f"{path}: no such file")
    try:
        check_safetensors(path)
    except DamagedFileError as exc:
        raise CheckpointReadError(f"{path.parent}/{exc}") from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if isinstance(exc, DamagedFileError) and text else f"{type(exc).__name__}: {text[0] if text else ''}"


class CheckpointManager:
    """Writes, lists, verifies, prunes and finds the checkpoints of one run directory (see the module docstring).

    Only the process holding the run's lock (:mod:`vitzoo.train.lock`) may call the methods that write or remove
    files (:meth:`save`, :meth:`save_best`, :meth:`prune`, :meth:`clean`, :meth:`set_aside`).
    """

    def __init__(self, directory: str | os.PathLike, *, keep_last: int = 2) -> None:
        if keep_last < 1:
            raise ValueError(f"keep_last must be >= 1, got {keep_last}")
        self.directory = Path(directory)
        self.keep_last = keep_last

    @property
    def best_path(self) -> Path:
        """``best.safetensors`` of the run."""
        return self.directory / BEST_NAME

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
        """State file of the most recent complete checkpoint (not verified: see :meth:`load_latest`), or None."""
        found = self.list()
        return found[-1][1] if found else None

    # ------------------------------------------------------------------------------------- writing
    def save(
        self,
        *,
        step: int,
        weights: dict[str, torch.Tensor],
        state: dict[str, Any],
        metadata: dict[str, str],
    ) -> Path:
        """Write the checkpoint at ``step`` (weights, then state, each verified), prune old ones and orphans, return
        the state path. Raises :class:`CheckpointWriteError` when a file cannot be written (earlier checkpoints
        are left intact)."""
        weights_path, state_path = self.paths(step)
        previous = self.latest()
        had_state = state_path.is_file()  # re-saving a step (its epoch-end state): its weights stay valid
        try:
            save_weights_atomic(weights, weights_path, {**metadata, "vitzoo.step": str(step)})
            save_torch_atomic({"format": STATE_FORMAT, **state}, state_path)
        except (OSError, DamagedFileError) as exc:
            if not had_state:
                weights_path.unlink(missing_ok=True)  # no state: not a checkpoint, and the space is needed
            if previous is not None:
                intact = f"the checkpoint {previous.name} is intact: fix the cause and continue with --resume"
            else:
                intact = "there is no earlier checkpoint"
            raise CheckpointWriteError(f"could not write checkpoint {state_path} ({exc}); {intact}") from exc
        self.prune()
        return state_path

    def save_best(self, weights: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
        """Write ``best.safetensors`` (verified before it replaces the previous one)."""
        path = self.best_path
        try:
            return save_weights_atomic(weights, path, metadata)
        except (OSError, DamagedFileError) as exc:
            kept = f"the previous {path.name} is intact" if path.is_file() else f"no {path.name} was written"
            raise CheckpointWriteError(f"could not write {path} ({exc}); {kept}") from exc

    def prune(self) -> None:
        """Delete all but the last ``keep_last`` checkpoints (state file first, so a half-deleted one is ignored),
        then :meth:`clean`."""
        for _, state_path in self.list()[: -self.keep_last]:
            state_path.unlink(missing_ok=True)
            self.weights_path_for(state_path).unlink(missing_ok=True)
        self.clean()

    def clean(self) -> list[Path]:
        """Remove what interrupted writes and deletions leave: weights files without their state file (a save or a
        prune cut short) and temporary files (a write cut short). Returns the removed paths."""
        if not self.directory.is_dir():
            return []
        removed = []
        for path in sorted(self.directory.iterdir()):
            state = path.with_name(path.name.replace(".safetensors", ".state.pt"))
            orphan = bool(_WEIGHTS_FILE.match(path.name)) and not state.exists()
            if orphan or (path.name.startswith(".") and path.name.endswith(".tmp") and path.is_file()):
                path.unlink(missing_ok=True)
                removed.append(path)
                log.info("removed %s (left by an interrupted %s)", path.name, "save" if orphan else "write")
        return removed

    def set_aside(self, paths: list[Path], why: str) -> None:
        """Move files into ``<checkpoints>/set_aside/`` (out of the way of :meth:`list` and pruning), saying why."""
        folder = self.directory / SET_ASIDE
        for path in paths:
            if path.exists():
                folder.mkdir(exist_ok=True)
                os.replace(path, folder / path.name)
                log.warning("moved %s to %s/ (%s)", path.name, SET_ASIDE, why)

    # ------------------------------------------------------------------------------------- reading
    def load(self, state_path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """``(weights, state)`` of the checkpoint whose state file is ``state_path``; :class:`CheckpointReadError`
        naming the file and what is wrong when either file is missing or damaged."""
        state_path = Path(state_path)
        weights_path = self.weights_path_for(state_path)
        if not state_path.is_file():
            raise CheckpointReadError(
                f"{state_path}: no such file (a training checkpoint is a step_*.state.pt file next to its "
                "step_*.safetensors weights)"
            )
        if not weights_path.is_file():
            raise CheckpointReadError(f"{state_path}: its weights file {weights_path.name} is missing")
        try:
            check_torch_zip(state_path)
            check_safetensors(weights_path)
            return read_state_dict(weights_path), load_state(state_path)
        except Exception as exc:  # anything that stops the files from being read is damage
            raise CheckpointReadError(f"{state_path.parent}/{_reason(exc)}") from exc

    def load_latest(self) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]]:
        """``(state path, weights, state)`` of the newest checkpoint that reads back; each newer one that does not
        is logged (which file, why) and moved to ``set_aside/``. Raises ``FileNotFoundError`` when there is no
        complete checkpoint, :class:`CheckpointReadError` naming every file tried when none reads."""
        refused: list[str] = []
        for _, state_path in reversed(self.list()):
            try:
                weights, state = self.load(state_path)
            except CheckpointReadError as exc:
                log.warning("skipping checkpoint %s: %s", state_path.name, exc)
                refused.append(str(exc))
                continue
            return state_path, weights, state
        if refused:
            raise CheckpointReadError(f"no checkpoint in {self.directory} can be read: {'; '.join(refused)}")
        leftovers = sorted(p.name for p in self.directory.glob("step_*")) if self.directory.is_dir() else []
        found = f" (only incomplete files: {', '.join(leftovers)})" if leftovers else ""
        raise InputNotFoundError(f"resume: no complete checkpoint in {self.directory}{found}")

    def newer_than(self, step: int) -> list[Path]:
        """The files of every complete checkpoint after ``step`` (state and weights)."""
        return [p for s, state in self.list() if s > step for p in (state, self.weights_path_for(state))]
