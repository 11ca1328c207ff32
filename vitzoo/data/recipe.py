"""The ``data:`` section of a recipe (:class:`DataSpec`) and the datasets it describes, for a given model.

The labelled video datasets are ``VideoListDataset`` (``layout: list``, annotation files under ``root``),
``VideoFolderDataset`` (``layout: folders``, ``root/<split>/<class>/<video>``), or one of the official layouts of
:mod:`vitzoo.data.layouts` (``ucf101``, ``hmdb51``, ``kinetics``, ``ssv2``, ``rawframes``) read as downloaded.
Clip length and frame size are the model's (``num_frames``, ``img_size``) and normalisation its ``mean``/``std``;
the validation set returns all ``eval_clips x eval_crops`` views of a video, ``(V, C, T, H, W)``.
:func:`frame_sampler` and :func:`split_dataset` are the pieces, for tasks that build their own datasets
(``vitzoo.ssl``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch.utils.data import Dataset

from vitzoo.data.datasets import VideoClipDataset, VideoFolderDataset, VideoListDataset
from vitzoo.data.frames import FrameFolderDataset
from vitzoo.data.layouts import LAYOUTS, LayoutSplit, SplitRequest, read_split
from vitzoo.data.layouts.base import check_fold
from vitzoo.data.sampling import DenseSampler, SegmentSampler
from vitzoo.data.transforms import eval_transform, train_transform
from vitzoo.schema import ConfigError, check_range

logger = logging.getLogger(__name__)

BASIC_LAYOUTS = ("list", "folders")
SamplerKind = Literal["dense", "segment"]
OnError = Literal["raise", "skip"]
VideoBackend = Literal["decord", "pyav"]


@dataclass
class DataSpec:
    """Where the videos are and how clips are sampled (the ``data:`` section).

    Clip length and frame size are the model's (``num_frames``, ``img_size``), never repeated here;
    normalisation uses the model config's ``mean``/``std``.
    """

    root: str = ""  # dataset root; every path below is relative to it
    layout: str = "list"  # "list": annotation files; "folders": root/<split>/<class>/<video>; or an official one:
    # ucf101, hmdb51, kinetics, ssv2, rawframes (vitzoo.data.layouts), read as the archives unpack
    train: str | None = "train.txt"  # list/rawframes: list file; folders: sub-folder; ignored by official layouts
    val: str | None = "val.txt"  # same for validation; null: no validation (official layouts too)
    classes: str | None = None  # one class name per line (label order); optional for "list"; official: not used
    fold: int = 1  # ucf101 / hmdb51: the official split (1, 2 or 3)
    annotations: str | None = None  # official layouts: folder of the annotation files (default: under root)
    sampler: SamplerKind = "dense"  # "dense": consecutive frames every frame_interval; "segment": TSN segments
    frame_interval: float = 2.0  # dense sampler: step between sampled frames
    target_fps: float | None = None  # dense sampler: frame_interval is defined at this frame rate
    train_scale: tuple[float, float] = (0.08, 1.0)  # RandomResizedCrop area range
    hflip: bool = True  # random horizontal flip (off for direction-sensitive labels)
    randaugment: str | None = None  # e.g. "rand-m9-n2"
    eval_clips: int = 1  # temporal views per validation video
    eval_crops: int = 1  # spatial views per clip: 1 (centre) or 3 (three crops)
    backend: VideoBackend = "decord"  # "decord" (fast seeking) or "pyav" (reference decoder)
    decode_short_side: int | None = None  # resize while decoding (saves time on large videos)
    on_error: OnError = "raise"  # undecodable videos: "raise" or "skip" (substitute the next sample)

    def validate(self) -> None:
        """Raise :class:`ConfigError` for unknown choices or a missing root."""
        if not self.root:
            raise ConfigError("data.root is required")
        if self.layout not in BASIC_LAYOUTS and self.layout not in LAYOUTS:
            known = ", ".join([*BASIC_LAYOUTS, *LAYOUTS.names()])
            raise ConfigError(f"data.layout: unknown layout {self.layout!r}; use one of {known}")
        check_range("data.fold", self.fold, low=1)
        if self.layout in LAYOUTS:
            try:
                check_fold(LAYOUTS.get(self.layout), self.fold)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        if self.train is None and (self.layout in BASIC_LAYOUTS or LAYOUTS.get(self.layout).uses_lists):
            raise ConfigError(f"data.train is required for layout {self.layout!r}")
        if self.eval_clips < 1 or self.eval_crops not in (1, 3):
            raise ConfigError(
                f"data.eval_clips must be >= 1 and data.eval_crops 1 or 3, got {self.eval_clips}, {self.eval_crops}"
            )


def frame_sampler(spec: DataSpec, num_frames: int, *, train: bool, num_clips: int = 1):
    """The recipe's frame sampler (``data.sampler``) for clips of ``num_frames`` frames."""
    if spec.sampler == "segment":
        return SegmentSampler(num_segments=num_frames, train=train, num_clips=num_clips)
    return DenseSampler(
        num_frames=num_frames,
        frame_interval=spec.frame_interval,
        train=train,
        num_clips=num_clips,
        target_fps=spec.target_fps,
    )


def official_split(spec: DataSpec, split: str | None) -> str:
    """``"train"`` or ``"val"``: which split of an official layout ``split`` (``spec.train``, ``spec.val``, or
    the split's own name) means."""
    if split in ("train", "val"):
        return split
    if split == spec.train:
        return "train"
    if split is not None and split == spec.val:
        return "val"
    raise ConfigError(f"split {split!r} of layout {spec.layout!r}: use 'train' or 'val'")


def read_layout_split(spec: DataSpec, split: str | None) -> LayoutSplit:
    """The samples, classes and missing files of one split of an official layout (:mod:`vitzoo.data.layouts`)."""
    name = official_split(spec, split)
    root = Path(spec.root)
    entry = LAYOUTS.get(spec.layout)
    list_name = spec.train if name == "train" else spec.val
    request = SplitRequest(
        root=root,
        split=name,
        fold=spec.fold,
        annotations=Path(spec.annotations) if spec.annotations is not None else None,
        list_file=root / list_name if entry.uses_lists and list_name is not None else None,
        classes_file=root / spec.classes if spec.classes is not None and entry.uses_lists else None,
    )
    return read_split(spec.layout, request)


def split_dataset(spec: DataSpec, split: str, *, sampler, transform, multi_view: bool = False) -> Dataset:
    """The videos of one split (``spec.train`` or ``spec.val``) with any sampler and transform, laid out as the
    recipe says (``list``, ``folders`` or an official layout)."""
    root = Path(spec.root)
    if spec.layout in LAYOUTS:
        return _official_dataset(spec, split, sampler=sampler, transform=transform, multi_view=multi_view)
    classes = root / spec.classes if spec.classes is not None else None
    options = _dataset_options(spec, sampler=sampler, transform=transform, classes=classes, multi_view=multi_view)
    options["backend"] = spec.backend
    if spec.layout == "folders":
        return VideoFolderDataset(root / split, **options)
    return VideoListDataset(root, root / split, **options)


def _official_dataset(spec: DataSpec, split: str, *, sampler, transform, multi_view: bool) -> Dataset:
    found = read_layout_split(spec, split)
    options = _dataset_options(spec, sampler=sampler, transform=transform, classes=found.classes, multi_view=multi_view)
    if LAYOUTS.get(spec.layout).frames:
        return FrameFolderDataset(found.samples, found.num_frames or [], **options)
    return VideoClipDataset(found.samples, backend=spec.backend, **options)


def _dataset_options(spec: DataSpec, *, sampler, transform, classes, multi_view: bool) -> dict[str, Any]:
    """The keyword arguments every dataset class takes from a recipe (sampling, transform, classes, errors)."""
    return dict(
        sampler=sampler,
        transform=transform,
        classes=classes,
        decode_short_side=spec.decode_short_side,
        on_error=spec.on_error,
        multi_view=multi_view,
    )


def dataset_num_classes(spec: DataSpec) -> int:
    """The class count of the recipe's training set (named classes: their number; else ``max label + 1``), read
    from its annotation files only (no video is opened): what ``model.num_classes: null`` becomes."""
    dataset = split_dataset(spec, spec.train, sampler=SegmentSampler(num_segments=1), transform=None)
    return dataset.num_classes


def build_datasets(spec: DataSpec, model: Any) -> tuple[Dataset, Dataset | None]:
    """``(train_set, val_set)`` for ``model`` (a video model: ``model.input_shape`` ``(C, T, H, W)``, ``model.cfg``
    with ``mean``/``std``); ``val_set`` is None when ``spec.val`` is null."""
    cfg = model.cfg
    shape = model.input_shape
    if len(shape) != 4:
        name = type(model).__name__
        raise ConfigError(f"the video recipes need a video model (clips (C, T, H, W)); {name} takes {shape}")
    _, num_frames, img_size, _ = shape
    train_tf = train_transform(
        img_size=img_size,
        mean=cfg.mean,
        std=cfg.std,
        scale=spec.train_scale,
        hflip=spec.hflip,
        randaugment=spec.randaugment,
    )
    if spec.layout in LAYOUTS and LAYOUTS.get(spec.layout).flip_sensitive and spec.hflip:
        logger.warning(
            "data.hflip is on for layout %r, whose labels name directions (left/right): a flipped clip shows another "
            "class; set data.hflip=false", spec.layout,
        )  # fmt: skip
    sampler = frame_sampler(spec, num_frames, train=True)
    train_set = split_dataset(spec, spec.train, sampler=sampler, transform=train_tf)
    val_set = None
    if spec.val is not None:
        val_tf = eval_transform(img_size=img_size, mean=cfg.mean, std=cfg.std, num_crops=spec.eval_crops)
        val_sampler = frame_sampler(spec, num_frames, train=False, num_clips=spec.eval_clips)
        val_set = split_dataset(spec, spec.val, sampler=val_sampler, transform=val_tf, multi_view=True)
    return train_set, val_set


__all__ = [
    "DataSpec",
    "build_datasets",
    "dataset_num_classes",
    "frame_sampler",
    "official_split",
    "read_layout_split",
    "split_dataset",
]
