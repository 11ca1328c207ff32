"""What ``vitzoo predict INPUT...`` reads: media files, folders (searched recursively) and text files listing paths."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})
LIST_SUFFIXES = frozenset({".txt", ".lst", ".list"})


def is_image(path: Path) -> bool:
    """Whether ``path`` is named like an image file."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def _listed(list_file: Path) -> list[Path]:
    """The paths a text file lists (one per line; blank lines and ``#`` comments skipped); a relative path that
    does not exist from here is taken relative to the list's folder."""
    paths = []
    for line in list_file.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path = Path(line)
        if not path.is_absolute() and not path.exists() and (list_file.parent / path).exists():
            path = list_file.parent / path
        paths.append(path)
    return paths


def expand_inputs(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """The files to predict, in order: a folder gives its video and image files (recursively, sorted), a ``.txt``
    file the paths it lists, anything else itself (a missing file stays, to be reported in its record)."""
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    media = VIDEO_SUFFIXES | IMAGE_SUFFIXES
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            paths += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in media)
        elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            paths += _listed(path)
        else:
            paths.append(path)
    return paths


__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "expand_inputs", "is_image"]
