"""Kinetics-400 / 600 / 700 as the official annotations and the usual downloads lay them out::

    annotations/train.csv    label,youtube_id,time_start,time_end,split[,is_cc]
    annotations/val.csv      (or validate.csv)
    train/<youtube_id>_<start:06d>_<end:06d>.mp4          flat ...
    train/<label>/<youtube_id>_<start:06d>_<end:06d>.mp4  ... or in per-label folders (any folder names)
    val/...                                                (or validate/)

Classes are the labels of the training CSV sorted by name. Videos are found by file name (any video suffix, any
folder depth below the split's folder). A row whose video is not there (Kinetics videos vanish from YouTube:
5-10 % of them by the time anyone downloads the set) is counted, left out and listed in ``missing``.
"""

from __future__ import annotations

import csv
import io

from vitzoo.data.errors import AnnotationError
from vitzoo.data.layouts.base import LayoutSplit, SplitRequest, first_existing, register_layout

ANNOTATIONS = "annotations"
CSV_NAMES = {"train": ("train.csv",), "val": ("val.csv", "validate.csv")}
FOLDERS = {"train": ("train",), "val": ("val", "validate")}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v"}


def video_stem(youtube_id: str, start: str, end: str) -> str:
    """``<youtube_id>_<start:06d>_<end:06d>``, the name every Kinetics download tool gives a clip."""
    return f"{youtube_id}_{int(float(start)):06d}_{int(float(end)):06d}"


def read_rows(path) -> list[tuple[int, str, str]]:
    """``(line, label, stem)`` of every row of a Kinetics CSV."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"{path}: not UTF-8 text ({exc.reason})") from None
    reader = csv.DictReader(io.StringIO(text))
    need = {"label", "youtube_id", "time_start", "time_end"}
    if not need <= set(reader.fieldnames or ()):
        raise AnnotationError(f"{path}: the header must name {sorted(need)}, got {reader.fieldnames}")
    rows = []
    for row in reader:
        try:
            rows.append(
                (
                    reader.line_num,
                    row["label"].strip(),
                    video_stem(row["youtube_id"], row["time_start"], row["time_end"]),
                )
            )
        except (TypeError, ValueError):
            raise AnnotationError(f"{path}:{reader.line_num}: time_start / time_end must be numbers") from None
    return rows


@register_layout("kinetics")
def read_kinetics(request: SplitRequest) -> LayoutSplit:
    """The ``train`` or ``val`` split of a Kinetics download."""
    folder = request.annotation_dir(ANNOTATIONS)
    train_csv = first_existing(folder, CSV_NAMES["train"], "Kinetics training CSV")
    classes = sorted({label for _, label, _ in read_rows(train_csv)})
    index = {name: i for i, name in enumerate(classes)}
    csv_path = first_existing(folder, CSV_NAMES[request.split], f"Kinetics {request.split} CSV")
    videos = next((request.root / f for f in FOLDERS[request.split] if (request.root / f).is_dir()), None)
    found = {}
    if videos is not None:
        for path in sorted(videos.rglob("*")):
            if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
                found.setdefault(path.stem, path)
    split_folder = FOLDERS[request.split][0] if videos is None else videos.name
    samples, missing = [], []
    for lineno, label, stem in read_rows(csv_path):
        if label not in index:
            raise AnnotationError(f"{csv_path}:{lineno}: label {label!r} is not a class of {train_csv.name}")
        path = found.get(stem)
        if path is None:
            missing.append(f"{split_folder}/{stem}")
        else:
            samples.append((path, index[label]))
    return LayoutSplit(samples, classes, missing)
