"""Annotation files, class-name files and safe path resolution inside a dataset root.

Annotation line format (Kinetics / Something-Something / mmaction convention)::

    relative/path/video.mp4 12          # space separated
    relative/path/video.mp4,12          # comma separated
    relative/path/video.mp4<TAB>12      # tab separated

The label is the last field; everything before the last separator is the path, so paths may contain
spaces. Blank lines and lines starting with ``#`` are skipped. A label is an integer index, or, when
class names are given, one of those names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

_LINE = re.compile(r"^(?P<path>.+?)\s*[\t ,]\s*(?P<label>[^\t ,]+)$")


def resolve_in_root(root: str | Path, path: str | Path) -> Path:
    """Join ``path`` onto ``root`` and refuse anything that lands outside ``root``.

    Relative paths are joined; absolute paths are accepted only if they lie inside ``root``. The
    check is lexical (``..`` components are collapsed, symlinks are not followed), so a root that
    contains symlinks to other disks keeps working while ``../`` escapes are rejected.

    Raises:
        ValueError: the resolved path is outside ``root``.
    """
    root_abs = os.path.normpath(os.path.abspath(root))
    joined = os.path.normpath(os.path.join(root_abs, os.fspath(path)))
    if os.path.commonpath([root_abs, joined]) != root_abs:
        raise ValueError(f"path {os.fspath(path)!r} resolves outside the dataset root {root_abs!r}")
    return Path(joined)


def _content_lines(path: Path):
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.strip()
            if line and not line.startswith("#"):
                yield lineno, line


def read_class_names(path: str | Path) -> list[str]:
    """Read class names, one per line, in label order (blank and ``#`` lines skipped).

    Raises:
        ValueError: the file is empty or repeats a name.
    """
    names = [line for _, line in _content_lines(Path(path))]
    if not names:
        raise ValueError(f"class-names file {path} lists no classes")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"class-names file {path} repeats the class {name!r}")
        seen.add(name)
    return names


def _parse_label(token: str, classes: Sequence[str] | None, where: str) -> int:
    try:
        label = int(token)
    except ValueError:
        if classes is not None and token in classes:
            return list(classes).index(token)
        known = "" if classes is None else " or a class name"
        raise ValueError(f"{where}: label {token!r} is not an integer{known}") from None
    if label < 0 or (classes is not None and label >= len(classes)):
        bound = "" if classes is None else f" (there are {len(classes)} classes)"
        raise ValueError(f"{where}: label {label} is out of range{bound}")
    return label


def parse_annotation_file(
    path: str | Path,
    *,
    root: str | Path,
    classes: Sequence[str] | None = None,
) -> list[tuple[Path, int]]:
    """Parse an annotation list into ``[(absolute video path, label), ...]``.

    Args:
        path: the annotation file (format in the module docstring).
        root: directory the video paths are relative to; paths escaping it are rejected.
        classes: optional class names; enables name labels and range checks on integer labels.

    Raises:
        ValueError: a malformed line, a bad label, or a path outside ``root`` (message gives
            ``file:line``).
    """
    samples: list[tuple[Path, int]] = []
    for lineno, line in _content_lines(Path(path)):
        where = f"{path}:{lineno}"
        match = _LINE.match(line)
        if match is None:
            raise ValueError(f"{where}: expected '<relative path> <label>', got {line!r}")
        label = _parse_label(match.group("label"), classes, where)
        try:
            video = resolve_in_root(root, match.group("path"))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        samples.append((video, label))
    if not samples:
        raise ValueError(f"annotation file {path} has no samples")
    return samples
