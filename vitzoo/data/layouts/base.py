"""What an official dataset layout is: a reader from ``(root, split, fold, annotations)`` to labelled samples.

Each layout lives in its own module of this package and registers itself in :data:`LAYOUTS` with
:func:`register_layout`; the package imports every module, so a new layout touches only its own file.
A reader returns a :class:`LayoutSplit`: the samples whose files are present, the class names in label order
(the same list for every split of a dataset) and the listed entries whose files are missing (left out; the caller
logs one warning line and ``vitzoo data check`` lists them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vitzoo.data.errors import AnnotationError, DataConfigError
from vitzoo.registry import Registry

logger = logging.getLogger(__name__)

SPLITS = ("train", "val")


@dataclass
class LayoutSplit:
    """One split of a dataset as its official files list it.

    Attributes:
        samples: ``[(absolute path, label), ...]`` of the entries whose video (or frame folder) exists.
        classes: class names in label order (``None``: labels without names, ``rawframes`` without data.classes).
        missing: the listed entries whose file does not exist (paths relative to the root).
        num_frames: frame folders only (``rawframes``): the frame count of every sample, in order.
    """

    samples: list[tuple[Path, int]]
    classes: list[str] | None
    missing: list[str] = field(default_factory=list)
    num_frames: list[int] | None = None


@dataclass(frozen=True)
class SplitRequest:
    """What a layout reader is asked for.

    Attributes:
        root: ``data.root``.
        split: ``"train"`` or ``"val"``.
        fold: ``data.fold`` (UCF101 and HMDB51 have three official folds).
        annotations: ``data.annotations`` (where the annotation files are; ``None``: the layout's default under root).
        list_file: layouts that read list files (``rawframes``): ``data.train`` / ``data.val`` under root.
        classes_file: ``data.classes`` under root, where a layout uses one.
    """

    root: Path
    split: str
    fold: int = 1
    annotations: Path | None = None
    list_file: Path | None = None
    classes_file: Path | None = None

    def annotation_dir(self, default: str) -> Path:
        """``annotations`` if given, else ``root / default``; a one-line error when it is not a folder."""
        folder = self.annotations if self.annotations is not None else self.root / default
        if not folder.is_dir():
            raise DataConfigError(
                f"annotation folder {folder} does not exist; unpack the official annotations there or set "
                "data.annotations to their folder"
            )
        return folder


@dataclass(frozen=True)
class Layout:
    """A registered layout.

    Attributes:
        name: the ``data.layout`` value.
        read: ``SplitRequest -> LayoutSplit``.
        folds: how many official folds (``data.fold`` must be in ``1..folds``).
        flip_sensitive: labels change under a horizontal flip (SSv2's "left"/"right" classes).
        frames: samples are folders of JPEG frames, not video files.
        uses_lists: ``data.train`` / ``data.val`` name list files (else they are ignored, only ``data.val: null``
            counts: no validation).
    """

    name: str
    read: Callable[[SplitRequest], LayoutSplit]
    folds: int = 1
    flip_sensitive: bool = False
    frames: bool = False
    uses_lists: bool = False


LAYOUTS: Registry[Layout] = Registry("data layout", error=DataConfigError, prefix="data.layout: ")


def register_layout(
    name: str, *, folds: int = 1, flip_sensitive: bool = False, frames: bool = False, uses_lists: bool = False
) -> Callable:
    """Decorator: register a ``SplitRequest -> LayoutSplit`` reader as layout ``name``."""

    def add(read: Callable[[SplitRequest], LayoutSplit]) -> Callable[[SplitRequest], LayoutSplit]:
        LAYOUTS.add(name, Layout(name, read, folds, flip_sensitive, frames, uses_lists))
        return read

    return add


def read_lines(path: Path) -> list[tuple[int, str]]:
    """``(line number, stripped line)`` of the non-blank lines of an official text file (CRLF or LF, a BOM
    dropped); a one-line error when it is missing or not UTF-8."""
    if not path.is_file():
        raise AnnotationError(f"annotation file {path} does not exist")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"{path}: not UTF-8 text ({exc.reason})") from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def first_existing(folder: Path, names: tuple[str, ...], what: str) -> Path:
    """The first of ``folder / name`` that exists; a one-line error naming all of them otherwise."""
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise AnnotationError(f"no {what} in {folder} (looked for {', '.join(names)})")


def check_fold(layout: Layout, fold: int) -> None:
    """:class:`DataConfigError` when ``fold`` is not one of the layout's official folds."""
    if isinstance(fold, bool) or not isinstance(fold, int) or not 1 <= fold <= layout.folds:
        raise DataConfigError(f"data.fold must be 1..{layout.folds} for layout {layout.name!r}, got {fold!r}")


def read_split(layout: str, request: SplitRequest) -> LayoutSplit:
    """The samples of ``request.split`` in ``layout``; missing files are left out with one warning line."""
    entry = LAYOUTS.get(layout)
    if request.split not in SPLITS:
        raise DataConfigError(f"split {request.split!r} of layout {layout!r}; use one of {SPLITS}")
    check_fold(entry, request.fold)
    if not request.root.is_dir():
        raise DataConfigError(f"data.root {request.root} is not a directory")
    result = entry.read(request)
    if result.missing:
        shown = ", ".join(result.missing[:3])
        logger.warning(
            "%s %s: %d of %d listed videos are missing and left out (e.g. %s); `vitzoo data check` lists them all",
            layout, request.split, len(result.missing), len(result.missing) + len(result.samples), shown,
        )  # fmt: skip
    if not result.samples:
        raise DataConfigError(
            f"layout {layout!r}, split {request.split!r}: none of the {len(result.missing)} listed videos exists "
            f"under {request.root}; is data.root the folder the archives were unpacked into?"
        )
    return result
