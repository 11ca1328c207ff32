"""Reading and writing weight files.

Every weight file vitzoo writes is safetensors, with the architecture name and the full config in the
metadata so that :func:`load_model` can rebuild the model on its own. Legacy ``.pt/.pth/.bin`` files
are read with ``torch.load(weights_only=True)`` only, with the few harmless types research training checkpoints
carry beside their weights allowlisted (:data:`SAFE_PICKLE_GLOBALS`: ``argparse.Namespace``, numpy scalars and
dtypes); a pickle holding anything else may run code when loaded and is refused
(:class:`~vitzoo.errors.UnsafeCheckpointError`), never loaded.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import re
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from vitzoo.config import ViTConfig, to_json
from vitzoo.durable import check_safetensors, save_atomic
from vitzoo.errors import CheckpointFileError, InputNotFoundError, UnsafeCheckpointError, one_line

log = logging.getLogger(__name__)

CONFIG_KEY = "vitzoo.config"
ARCH_KEY = "vitzoo.arch"
LABELS_KEY = "vitzoo.labels"  # JSON list of class names, in head order (written by vitzoo train, save_pretrained)
PREPROCESS_KEY = "vitzoo.preprocess"  # JSON of the recipe's evaluation sampling (vitzoo.data.preprocess)
LICENSE_KEY = "vitzoo.license"  # the weights' licence when known (timm's pretrained_cfg, a shipped file's manifest)
SHIPPED_LICENSE = "Apache-2.0"  # the weights in weights_dir() are this project's, under its licence
WEIGHTS_ENV = "VITZOO_WEIGHTS_DIR"


def weights_dir() -> Path:
    """Folder of the weights this project ships: ``$VITZOO_WEIGHTS_DIR`` or ``weights/`` of the checkout."""
    env = os.environ.get(WEIGHTS_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "weights"


def resolve_weights(source: str | os.PathLike) -> Path:
    """A local file path, or the name of a file in :func:`weights_dir` (with or without suffix)."""
    path = Path(source)
    if path.is_file():
        return path
    shipped = weights_dir()
    for candidate in (shipped / str(source), shipped / f"{source}.safetensors"):
        if candidate.is_file():
            return candidate
    available = sorted(p.stem for p in shipped.glob("*.safetensors")) if shipped.is_dir() else []
    raise InputNotFoundError(
        f"no weight file {str(source)!r}: not a file, and not in {shipped} (available: {available or 'none'})"
    )


def save_state_dict(
    state_dict: dict[str, torch.Tensor], path: str | os.PathLike, *, metadata: dict[str, str] | None = None
) -> Path:
    """Write tensors to ``path`` as safetensors through :func:`~vitzoo.durable.save_atomic` (temporary file, fsync,
    checked to hold exactly these tensors, rename), readable by everyone (safetensors creates the file owner-only;
    weight files are meant to be shared)."""
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
    meta = {"format": "pt", **(metadata or {})}
    check = lambda tmp: check_safetensors(tmp, tensors)
    return save_atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta), check, mode=0o644)


def _open_safetensors(path: str | os.PathLike):
    """``safe_open`` with errors that name the file and say what it is not."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointFileError(
            f"{path} is not a .safetensors file; read it with vitzoo.create(name, pretrained=...) "
            "(torch pickles are loaded with weights_only=True)"
        )
    if not path.is_file():
        raise InputNotFoundError(f"no weight file {path}")
    try:
        return safe_open(str(path), framework="pt")
    except Exception as exc:  # safetensors raises its own error types (SafetensorError, OSError) for bad files
        raise CheckpointFileError(
            f"{path} is not a readable safetensors file (truncated or not safetensors: {type(exc).__name__}: {exc}); "
            "download or copy it again"
        ) from None


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata of a safetensors file."""
    with _open_safetensors(path) as f:
        return dict(f.metadata() or {})


def read_shapes(path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in a safetensors file, from its header alone (no tensor is read)."""
    with _open_safetensors(path) as f:
        return {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}  # noqa: SIM118 (safe_open is not iterable)


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a weight file: safetensors, or a ``weights_only`` torch pickle (``.pt/.pth/.bin``)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        with _open_safetensors(path) as f:
            return {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    if path.suffix in (".pt", ".pth", ".bin"):
        obj = load_pickle(path)
        for key in ("model", "state_dict", "module"):
            if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
                log.info("%s: using the %r entry of the checkpoint", path, key)
                obj = obj[key]
        return obj
    raise CheckpointFileError(
        f"unsupported weight file suffix {path.suffix!r} for {path}: use a .safetensors file "
        "(or a torch pickle named .pt, .pth or .bin)"
    )


def safe_pickle_globals() -> list:
    """The types allowed in a torch pickle besides tensors and plain data: what research training checkpoints
    (MAE, VideoMAE, DINO, DeiT) store beside their weights: ``argparse.Namespace`` (their ``args``), numpy scalars
    and numpy dtypes. None of them runs code when unpickled."""
    import numpy as np

    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    allowed: list = [argparse.Namespace, np.dtype, scalar, (scalar, "numpy.core.multiarray.scalar")]
    if hasattr(np, "dtypes"):  # numpy >= 1.25 pickles a dtype with its class
        kinds = ("Bool", "Int", "UInt", "Float", "Complex", "Byte", "UByte", "Short", "UShort", "Long", "ULong")
        allowed += [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType") and n.startswith(kinds)]
    return allowed


SAFE_PICKLE_DOC = 'the section "Converting a trusted pickle" of docs/reliability.md'


def load_pickle(path: str | os.PathLike) -> object:
    """A torch pickle loaded with ``weights_only=True`` and :func:`safe_pickle_globals` allowed.

    Raises:
        UnsafeCheckpointError: the file holds other objects (code could run when they are unpickled): refused.
        CheckpointFileError: the file is truncated or not a torch pickle.
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"no weight file {path}")
    try:
        with torch.serialization.safe_globals(safe_pickle_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" not in text or "Unsupported operand" in text:  # not a torch pickle at all
            operand = re.search(r"Unsupported operand \d+", text)
            reason = operand.group(0) if operand else one_line(exc)[:200]
            raise CheckpointFileError(
                f"{path} is not a readable torch checkpoint (not a pickle: {reason}); download or copy it again, "
                "or use its .safetensors version"
            ) from None
        found = re.search(r"GLOBAL (\S+)", str(exc)) or re.search(r"global[^\w]+([\w.]+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise UnsafeCheckpointError(
            f"{path} is refused: it is a pickle that contains code{what}, not only tensors, and loading it could run "
            f"that code; if you trust where it came from, convert it once to safetensors (see {SAFE_PICKLE_DOC}) "
            "and use that file"
        ) from None
    except (RuntimeError, EOFError, KeyError, ValueError, OSError) as exc:  # torch's errors for damaged files
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split('. ')[0].split())}".rstrip(": ")
        raise CheckpointFileError(
            f"{path} is not a readable torch checkpoint (truncated, damaged or not a checkpoint: {reason}); "
            "download or copy it again, or use its .safetensors version"
        ) from None


def model_metadata(model: torch.nn.Module) -> dict[str, str]:
    """The metadata vitzoo stores with a model: architecture name, config JSON and, when known, the licence."""
    cfg: ViTConfig = model.cfg
    meta = {ARCH_KEY: getattr(model, "arch_name", "") or "", CONFIG_KEY: to_json(cfg)}
    license = getattr(model, "pretrained_tags", {}).get("license")
    return {**meta, LICENSE_KEY: license} if license else meta


def weights_license(path: Path, metadata: dict[str, str]) -> str | None:
    """The licence of a weight file: its metadata's, or this project's for a file shipped in :func:`weights_dir`."""
    if LICENSE_KEY in metadata:
        return metadata[LICENSE_KEY]
    return SHIPPED_LICENSE if path.resolve().parent == weights_dir().resolve() else None


def describe(path: str | os.PathLike) -> dict:
    """Architecture name and config dict stored in a vitzoo safetensors file (empty if absent)."""
    meta = read_metadata(path)
    if CONFIG_KEY not in meta:
        return {}
    return {"arch": meta.get(ARCH_KEY, ""), "config": json.loads(meta[CONFIG_KEY])}
