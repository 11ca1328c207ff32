"""HMDB51 as the official archives unpack (``hmdb51_org.rar`` with one ``.rar`` per class unpacked, and
``test_train_splits.rar``)::

    hmdb51_org/<class>/<video>.avi
    testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt   "<video>.avi 1" (1: train, 2: test, 0: unused)

Classes are the class names in sorted order (the split files' names, which are the folder names). Videos marked
``0`` belong to neither split of that fold.
"""

from __future__ import annotations

import re

from vitzoo.data.errors import AnnotationError
from vitzoo.data.layouts.base import LayoutSplit, SplitRequest, read_lines, register_layout

VIDEOS, ANNOTATIONS = "hmdb51_org", "testTrainMulti_7030_splits"
CODES = {"train": "1", "val": "2"}


@register_layout("hmdb51", folds=3)
def read_hmdb51(request: SplitRequest) -> LayoutSplit:
    """Fold ``request.fold`` of HMDB51: lines coded ``1`` for train, ``2`` for val."""
    folder = request.annotation_dir(ANNOTATIONS)
    pattern = re.compile(rf"^(?P<cls>.+)_test_split{request.fold}\.txt$")
    files = {m.group("cls"): folder / m.group(0) for p in folder.iterdir() if (m := pattern.match(p.name))}
    if not files:
        raise AnnotationError(f"no <class>_test_split{request.fold}.txt files in {folder}")
    classes = sorted(files)
    samples, missing = [], []
    for label, name in enumerate(classes):
        for lineno, line in read_lines(files[name]):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise AnnotationError(f"{files[name]}:{lineno}: expected '<video>.avi 0|1|2', got {line!r}")
            if parts[1] != CODES[request.split]:
                continue
            path = request.root / VIDEOS / name / parts[0]
            if path.is_file():
                samples.append((path, label))
            else:
                missing.append(f"{VIDEOS}/{name}/{parts[0]}")
    return LayoutSplit(samples, classes, missing)
