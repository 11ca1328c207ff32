"""Annotation files, class-name files and safe path resolution inside a dataset root.

Annotation line format (Kinetics / Something-Something / mmaction convention)::

    relative/path/video.mp4 12          # space separated
    relative/path/video.mp4,12          # comma separated
    relative/path/video.mp4<TAB>12      # tab separated

The label is the last field; everything before the last separator is the path, so paths may contain
spaces. Blank lines and lines starting with ``#`` are skipped. A label is an integer index, or, when
class names are given, one of those names. Files are read as UTF-8; a leading byte-order mark (as
written by some Windows editors) is dropped.

Problems raise :class:`~vitzoo.data.errors.AnnotationError` (a ``ValueError``) with a one-line message
naming the file (and ``file:line``): a missing or non-UTF-8 file, no samples, a malformed line, a label
that is not an integer / class name, or out of range. Repeated lines are kept (they may be intended
oversampling) but logged in one warning; so is a video listed with different labels.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from vitzoo.data.errors import AnnotationError, DataConfigError

logger = logging.getLogger(__name__)

_LINE = re.compile(r"^(?P<path>.+?)\s*[\t ,]\s*(?P<label>[^\t ,]+)$")
_SHOWN = 5  # line numbers quoted in a warning


def resolve_in_root(root: str | Path, path: str | Path) -> Path:
    """Join ``path`` onto ``root`` and refuse anything that lands outside ``root``.

    Relative paths are joined; absolute paths are accepted only if they lie inside ``root``. The
    check is lexical (``..`` components are collapsed, symlinks are not followed), so a root that
    contains symlinks to other disks keeps working while ``../`` escapes are rejected.

    Raises:
        DataConfigError: the resolved path is outside ``root``.
    """
    root_abs = os.path.normpath(os.path.abspath(root))
    joined = os.path.normpath(os.path.join(root_abs, os.fspath(path)))
    if os.path.commonpath([root_abs, joined]) != root_abs:
        raise DataConfigError(f"path {os.fspath(path)!r} resolves outside the dataset root {root_abs!r}")
    return Path(joined)


def _content_lines(path: Path, what: str) -> Iterator[tuple[int, str]]:
    """``(line number, stripped line)`` of the non-blank, non-comment lines of a UTF-8 text file."""
    if not path.is_file():
        reason = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise AnnotationError(f"{what} {path} {reason}")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")  # utf-8-sig: drop a leading byte-order mark
    except UnicodeDecodeError as exc:
        lineno = data[: exc.start].count(b"\n") + 1
        raise AnnotationError(f"{path}:{lineno}: not UTF-8 text ({exc.reason}); save the {what} as UTF-8") from None
    for lineno, raw in enumerate(re.split(r"\r\n?|\n", text), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield lineno, line


def read_class_names(path: str | Path) -> list[str]:
    """Read class names, one per line, in label order (blank and ``#`` lines skipped).

    Raises:
        AnnotationError: the file is missing, not UTF-8, empty, or repeats a name.
    """
    seen: dict[str, int] = {}
    for lineno, name in _content_lines(Path(path), "class-names file"):
        if name in seen:
            raise AnnotationError(f"{path}:{lineno}: repeats the class {name!r} (first on line {seen[name]})")
        seen[name] = lineno
    if not seen:
        raise AnnotationError(f"class-names file {path} lists no classes")
    return list(seen)


def _parse_label(token: str, classes: Sequence[str] | None, index: dict[str, int] | None, where: str) -> int:
    try:
        label = int(token)
    except ValueError:
        if index is not None and token in index:
            return index[token]
        known = "" if classes is None else " or a class name"
        raise AnnotationError(f"{where}: label {token!r} is not an integer{known}") from None
    if label < 0:
        raise AnnotationError(f"{where}: label {label} is negative; labels are class indices >= 0")
    if classes is not None and label >= len(classes):
        raise AnnotationError(
            f"{where}: label {label} is out of range; valid labels are 0..{len(classes) - 1} ({len(classes)} classes)"
        )
    return label


def _warn_repeats(path: Path, lines: list[tuple[int, Path, int]]) -> None:
    """One warning for repeated ``(video, label)`` lines, one for videos listed with different labels."""
    first: dict[tuple[Path, int], int] = {}
    labels: dict[Path, tuple[int, int]] = {}  # video -> (first line, first label)
    repeats: list[tuple[int, int]] = []
    conflicts: list[tuple[int, int]] = []
    for lineno, video, label in lines:
        key = (video, label)
        if key in first:
            repeats.append((lineno, first[key]))
            continue
        first[key] = lineno
        if video in labels and labels[video][1] != label:
            conflicts.append((lineno, labels[video][0]))
        labels.setdefault(video, (lineno, label))
    if repeats:
        shown = ", ".join(f"{a} (= line {b})" for a, b in repeats[:_SHOWN])
        logger.warning(
            "%s: %d duplicate line(s) repeat an earlier path and label, e.g. line %s; they are kept "
            "(each is sampled as often as it is listed)", path, len(repeats), shown,
        )  # fmt: skip
    if conflicts:
        shown = ", ".join(f"{a} (vs line {b})" for a, b in conflicts[:_SHOWN])
        logger.warning("%s: %d line(s) list a video already listed with another label, e.g. line %s",
                       path, len(conflicts), shown)  # fmt: skip


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
        AnnotationError: a missing, non-UTF-8 or empty file, a malformed line, a bad label, or a path
            outside ``root`` (the message gives ``file:line``).
    """
    path = Path(path)
    index = {name: i for i, name in enumerate(classes)} if classes is not None else None
    lines: list[tuple[int, Path, int]] = []
    for lineno, line in _content_lines(path, "annotation file"):
        where = f"{path}:{lineno}"
        match = _LINE.match(line)
        if match is None:
            raise AnnotationError(f"{where}: expected '<relative path> <label>', got {line!r}")
        label = _parse_label(match.group("label"), classes, index, where)
        try:
            video = resolve_in_root(root, match.group("path"))
        except DataConfigError as exc:
            raise AnnotationError(f"{where}: {exc}") from None
        lines.append((lineno, video, label))
    if not lines:
        raise AnnotationError(f"annotation file {path} has no samples (only blank or '#' lines)")
    _warn_repeats(path, lines)
    return [(video, label) for _, video, label in lines]
