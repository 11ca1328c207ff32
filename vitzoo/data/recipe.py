"""The ``data:`` section of a recipe (:class:`DataSpec`) and the datasets it describes, for a given model.

The labelled video datasets are ``VideoListDataset`` (``layout: list``, annotation files under ``root``) or
``VideoFolderDataset`` (``layout: folders``, ``root/<split>/<class>/<video>``). Clip length and frame size are the
model's (``num_frames``, ``img_size``) and normalisation its ``mean``/``std``; the validation set returns all
``eval_clips x eval_crops`` views of a video, ``(V, C, T, H, W)``. :func:`frame_sampler` and :func:`split_dataset`
are the pieces, for tasks that build their own datasets (``vitzoo.ssl``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch.utils.data import Dataset

from vitzoo.data.datasets import VideoFolderDataset, VideoListDataset
from vitzoo.data.sampling import DenseSampler, SegmentSampler
from vitzoo.data.transforms import eval_transform, train_transform
from vitzoo.schema import ConfigError

DataLayout = Literal["list", "folders"]
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
    layout: DataLayout = "list"  # "list": annotation files; "folders": root/<split>/<class>/<video>
    train: str = "train.txt"  # list: annotation file; folders: sub-folder of root
    val: str | None = "val.txt"  # same for validation; null: no validation
    classes: str | None = None  # one class name per line (label order); optional for "list"
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


def split_dataset(spec: DataSpec, split: str, *, sampler, transform, multi_view: bool = False) -> Dataset:
    """The videos of one split (``spec.train`` or ``spec.val``) with any sampler and transform, laid out as the
    recipe says (``list`` or ``folders``)."""
    root = Path(spec.root)
    classes = root / spec.classes if spec.classes is not None else None
    options: dict[str, Any] = dict(
        sampler=sampler,
        transform=transform,
        classes=classes,
        backend=spec.backend,
        decode_short_side=spec.decode_short_side,
        on_error=spec.on_error,
        multi_view=multi_view,
    )
    if spec.layout == "folders":
        return VideoFolderDataset(root / split, **options)
    return VideoListDataset(root, root / split, **options)


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
    sampler = frame_sampler(spec, num_frames, train=True)
    train_set = split_dataset(spec, spec.train, sampler=sampler, transform=train_tf)
    val_set = None
    if spec.val is not None:
        val_tf = eval_transform(img_size=img_size, mean=cfg.mean, std=cfg.std, num_crops=spec.eval_crops)
        val_sampler = frame_sampler(spec, num_frames, train=False, num_clips=spec.eval_clips)
        val_set = split_dataset(spec, spec.val, sampler=val_sampler, transform=val_tf, multi_view=True)
    return train_set, val_set


__all__ = ["DataSpec", "build_datasets", "frame_sampler", "split_dataset"]
