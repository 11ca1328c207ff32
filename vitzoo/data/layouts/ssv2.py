"""Something-Something v2 as the official archives unpack::

    20bn-something-something-v2/<id>.webm
    labels/labels.json        {"Approaching something with your camera": "0", ...}
    labels/train.json         [{"id": "78687", "label": "...", "template": "Holding [something] next to [something]",
    labels/validation.json      "placeholders": [...]}, ...]

(the ``something-something-v2-labels.json`` / ``-train.json`` / ``-validation.json`` names are accepted too). The
label of a video is ``labels[template with the brackets removed]``. Many classes name a direction ("Pushing
something from left to right"): a horizontal flip changes the label, so the layout is flip-sensitive and the loader
warns when a recipe flips it.
"""

from __future__ import annotations

import json

from vitzoo.data.errors import AnnotationError
from vitzoo.data.layouts.base import LayoutSplit, SplitRequest, first_existing, register_layout

VIDEOS, ANNOTATIONS = "20bn-something-something-v2", "labels"
FILES = {
    "labels": ("labels.json", "something-something-v2-labels.json"),
    "train": ("train.json", "something-something-v2-train.json"),
    "val": ("validation.json", "something-something-v2-validation.json"),
}


def template_key(template: str) -> str:
    """A template as ``labels.json`` keys it: ``"Putting [something] on [something]"`` -> ``"Putting something on
    something"``."""
    return template.replace("[", "").replace("]", "")


def _load(path):
    try:
        return json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AnnotationError(f"{path}: not a JSON file ({exc})") from None


@register_layout("ssv2", flip_sensitive=True)
def read_ssv2(request: SplitRequest) -> LayoutSplit:
    """The ``train`` or ``val`` (``validation.json``) split of Something-Something v2."""
    folder = request.annotation_dir(ANNOTATIONS)
    labels_path = first_existing(folder, FILES["labels"], "SSv2 labels.json")
    table = _load(labels_path)
    if not isinstance(table, dict) or not table:
        raise AnnotationError(f"{labels_path}: expected a mapping of templates to label numbers")
    index = {name: int(number) for name, number in table.items()}
    if sorted(index.values()) != list(range(len(index))):
        raise AnnotationError(f"{labels_path}: label numbers must run 0..{len(index) - 1}")
    classes = [name for name, _ in sorted(index.items(), key=lambda item: item[1])]
    split_path = first_existing(folder, FILES[request.split], f"SSv2 {request.split} file")
    samples, missing = [], []
    for n, entry in enumerate(_load(split_path)):
        try:
            video_id, template = str(entry["id"]), entry["template"]
        except (TypeError, KeyError):
            raise AnnotationError(f"{split_path}: entry {n} has no 'id' and 'template'") from None
        label = index.get(template_key(template))
        if label is None:
            raise AnnotationError(
                f"{split_path}: entry {n} (id {video_id}): template {template!r} is not in {labels_path.name}"
            )
        path = request.root / VIDEOS / f"{video_id}.webm"
        if path.is_file():
            samples.append((path, label))
        else:
            missing.append(f"{VIDEOS}/{video_id}.webm")
    return LayoutSplit(samples, classes, missing)
