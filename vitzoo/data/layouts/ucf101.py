"""UCF101 as the official archives unpack (``UCF101.rar`` and ``UCF101TrainTestSplits-RecognitionTask.zip``)::

    UCF-101/<Class>/v_<Class>_gXX_cYY.avi
    ucfTrainTestlist/classInd.txt        "1 ApplyEyeMakeup" (1-based; CRLF line ends)
    ucfTrainTestlist/trainlist0K.txt     "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"
    ucfTrainTestlist/testlist0K.txt      "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi" (no label)

Labels are ``classInd`` numbers minus one. The test lists carry no label: it is the class folder of the path. A
training line whose number and folder disagree is an error (a wrong ``classInd.txt``).
"""

from __future__ import annotations

from vitzoo.data.annotations import resolve_in_root
from vitzoo.data.errors import AnnotationError
from vitzoo.data.layouts.base import LayoutSplit, SplitRequest, read_lines, register_layout

VIDEOS, ANNOTATIONS = "UCF-101", "ucfTrainTestlist"


def read_class_index(path) -> list[str]:
    """Class names in label order from ``classInd.txt`` (``"<1-based index> <name>"`` lines)."""
    names: dict[int, str] = {}
    for lineno, line in read_lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise AnnotationError(f"{path}:{lineno}: expected '<index> <ClassName>', got {line!r}")
        names[int(parts[0])] = parts[1]
    if sorted(names) != list(range(1, len(names) + 1)):
        raise AnnotationError(f"{path}: class numbers must run 1..{len(names)}, got {sorted(names)[:5]}...")
    return [names[i] for i in range(1, len(names) + 1)]


@register_layout("ucf101", folds=3)
def read_ucf101(request: SplitRequest) -> LayoutSplit:
    """Fold ``request.fold`` of UCF101: ``trainlist0K.txt`` for train, ``testlist0K.txt`` for val."""
    folder = request.annotation_dir(ANNOTATIONS)
    classes = read_class_index(folder / "classInd.txt")
    lower = {name.lower(): i for i, name in enumerate(classes)}
    name = f"{'trainlist' if request.split == 'train' else 'testlist'}0{request.fold}.txt"
    videos = request.root / VIDEOS
    samples, missing = [], []
    for lineno, line in read_lines(folder / name):
        where = f"{folder / name}:{lineno}"
        parts = line.split()
        rel = parts[0]
        folder_label = lower.get(rel.split("/")[0].lower())
        if folder_label is None:
            raise AnnotationError(f"{where}: class folder of {rel!r} is not in classInd.txt")
        label = folder_label
        if len(parts) > 1:  # training lists: the 1-based number must agree with the folder
            if not parts[1].isdigit() or not 1 <= int(parts[1]) <= len(classes):
                raise AnnotationError(f"{where}: label {parts[1]!r} is not a class number 1..{len(classes)}")
            label = int(parts[1]) - 1
            if label != folder_label:
                raise AnnotationError(
                    f"{where}: label {parts[1]} is {classes[label]!r} in classInd.txt but the video is in folder "
                    f"{rel.split('/')[0]!r}; is classInd.txt from the same archive?"
                )
        path = resolve_in_root(videos, rel)
        if path.is_file():
            samples.append((path, label))
        else:
            missing.append(f"{VIDEOS}/{rel}")
    return LayoutSplit(samples, classes, missing)
