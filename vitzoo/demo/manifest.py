"""``weights/manifest.json``: what every shipped weight file is, how it was made, and how to feed it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from vitzoo.checkpoints.io import LABELS_KEY, PREPROCESS_KEY, describe, read_metadata
from vitzoo.durable import write_text_atomic
from vitzoo.registry import FAMILIES


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def record(weights: Path, *, recipe: dict[str, Any], metrics: dict[str, Any], reproduce: str) -> dict[str, Any]:
    """Add or replace the manifest entry of ``weights`` (in the manifest beside it) and return the entry.

    The entry carries the file's sha256, its architecture and config (read from the file's metadata), the
    preprocessing a user must apply (mean/std, input size, frames), the class names and evaluation sampling the file
    records (``labels``, ``recipe.eval``), the training recipe, metrics, and the command that reproduces it.
    """
    info = describe(weights)
    if not info:
        raise ValueError(f"{weights} has no vitzoo metadata; save it with vitzoo.save")
    fields = info["config"]["fields"]
    video = FAMILIES.get(info["config"]["class"]).modality == "video"
    metadata = read_metadata(weights)
    if PREPROCESS_KEY in metadata:
        recipe = {**recipe, "eval": json.loads(metadata[PREPROCESS_KEY])}
    entry = {
        "file": weights.name,
        "sha256": sha256(weights),
        "architecture": info["arch"],
        "preprocessing": {
            "mean": fields["mean"],
            "std": fields["std"],
            "img_size": fields["img_size"],
            "num_frames": fields["num_frames"] if video else None,
            "input_layout": f"{'(B, C, T, H, W)' if video else '(B, C, H, W)'} float, RGB in [0, 1] then normalised",
        },
        "recipe": recipe,
        "metrics": metrics,
        "reproduce": reproduce,
    }
    if LABELS_KEY in metadata:
        entry["labels"] = json.loads(metadata[LABELS_KEY])
    path = weights.parent / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {}
    manifest[weights.stem] = entry
    write_text_atomic(path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return entry


def verify(weights_dir: Path) -> list[str]:
    """Names of manifest entries whose file is missing or whose sha256 does not match (empty: all good)."""
    manifest = json.loads((weights_dir / "manifest.json").read_text())
    bad = []
    for name, entry in manifest.items():
        file = weights_dir / entry["file"]
        if not file.is_file() or sha256(file) != entry["sha256"]:
            bad.append(name)
    return bad
