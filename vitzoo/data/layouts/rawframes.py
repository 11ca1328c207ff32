"""Pre-extracted frames (mmaction2's ``rawframes``)::

    <video_dir>/img_00001.jpg, img_00002.jpg, ...      (numbered from 1)
    train.txt / val.txt                               "<video_dir> <num_frames> <label>" lines

``data.train`` / ``data.val`` name the list files (under ``data.root``), as in the ``list`` layout; ``data.classes``
optionally names a class-names file. Frame ``i`` of a clip (0-based, as the samplers count) is file
``img_{i + 1:05d}.jpg``.
"""

from __future__ import annotations

from vitzoo.data.annotations import read_class_names, resolve_in_root
from vitzoo.data.errors import AnnotationError, DataConfigError
from vitzoo.data.frames import FRAME_NAME
from vitzoo.data.layouts.base import LayoutSplit, SplitRequest, read_lines, register_layout


def frame_path(folder, index: int):
    """The file of 0-based frame ``index`` in a frame folder."""
    return folder / FRAME_NAME.format(index + 1)


@register_layout("rawframes", frames=True, uses_lists=True)
def read_rawframes(request: SplitRequest) -> LayoutSplit:
    """The frame folders listed in ``request.list_file``."""
    if request.list_file is None:
        raise DataConfigError(f"layout 'rawframes' needs data.{request.split}: the list of frame folders")
    classes = read_class_names(request.classes_file) if request.classes_file is not None else None
    samples, missing, counts = [], [], []
    for lineno, line in read_lines(request.list_file):
        parts = line.rsplit(None, 2)
        where = f"{request.list_file}:{lineno}"
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].lstrip("-").isdigit():
            raise AnnotationError(f"{where}: expected '<frame folder> <num_frames> <label>', got {line!r}")
        label, num = int(parts[2]), int(parts[1])
        if label < 0 or (classes is not None and label >= len(classes)):
            raise AnnotationError(f"{where}: label {label} is out of range")
        if num < 1:
            raise AnnotationError(f"{where}: num_frames must be >= 1, got {num}")
        folder = resolve_in_root(request.root, parts[0])
        if frame_path(folder, 0).is_file():
            samples.append((folder, label))
            counts.append(num)
        else:
            missing.append(parts[0])
    return LayoutSplit(samples, classes, missing, num_frames=counts)
