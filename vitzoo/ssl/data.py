"""The datasets of a self-supervised recipe: multi-view training samples and a kNN memory / query pair.

Video models (clips ``(C, T, H, W)``), from the recipe's ``data`` section (``list`` or ``folders`` layout):

* training: the ``data.train`` split, ``V = views.num_views`` views per video, ``((V, C, T, H, W), label)``:
  ``views.temporal: cvrl`` draws ``V`` clips with :class:`~vitzoo.ssl.temporal.CVRLSampler` (``data.sampler:
  segment``: ``V`` independent segment draws), ``shared`` one clip for every view; view ``v`` gets its own
  spatial augmentation (:func:`~vitzoo.ssl.views.ssl_augment`), drawn once for all of its frames;
* kNN validation: the memory bank is the ``data.train`` split (``knn_memory`` of its samples, a fixed random
  subset, when set), the queries the ``data.val`` split, both one deterministic clip (the recipe's sampler in
  evaluation mode) with a centre crop, ``((C, T, H, W), label)``. No validation when ``data.val`` is null.

Image models (``(C, H, W)``) need ``data.layout: folders`` (``root/<split>/<class>/<image>``, read by
``torchvision.datasets.ImageFolder``): :class:`~vitzoo.ssl.views.ImageViews` for training, resize and centre
crop for kNN; an undecodable image follows ``data.on_error`` as a video does. Horizontal flips follow
``data.hflip`` in both cases. Labels are read (the layouts need them) but only SupCon and the kNN validation
use them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, Subset
from torchvision.transforms import v2

from vitzoo.schema import ConfigError
from vitzoo.ssl.options import ViewOptions
from vitzoo.ssl.temporal import CVRLSampler
from vitzoo.ssl.views import ImageViews, ssl_augment
from vitzoo.train.config import DataSpec, RunConfig
from vitzoo.train.recipe import frame_sampler, split_dataset
from vitzoo.train.tasks.registry import TaskData, get_task


def view_augmentations(model: nn.Module, views: ViewOptions, *, hflip: bool) -> list[v2.Compose]:
    """One augmentation pipeline per view for ``model``'s input size and normalisation (uint8 in, float out)."""
    cfg = model.cfg
    size = tuple(model.input_shape[-2:])  # (H, W)
    return [
        ssl_augment(
            img_size=size,
            mean=cfg.mean,
            std=cfg.std,
            scale=views.scale,
            ratio=views.ratio,
            hflip=hflip,
            jitter=views.jitter,
            jitter_p=views.jitter_p,
            grayscale_p=views.grayscale_p,
            blur_p=views.per_view("blur_p", v),
            solarize_p=views.per_view("solarize_p", v),
        )
        for v in range(views.num_views)
    ]


def training_sampler(spec: DataSpec, num_frames: int, views: ViewOptions):
    """The clips of one training video: ``V`` CVRL clips, ``V`` segment draws, or one clip shared by the views."""
    from vitzoo.data import SegmentSampler

    clips = views.num_views if views.temporal == "cvrl" else 1
    if spec.sampler == "segment":
        return SegmentSampler(num_segments=num_frames, train=True, num_clips=clips)
    if clips == 1:
        return frame_sampler(spec, num_frames, train=True)
    return CVRLSampler(
        num_frames, frame_interval=spec.frame_interval, num_clips=clips, max_gap=views.max_gap,
        target_fps=spec.target_fps,
    )  # fmt: skip


def memory_subset(dataset: Dataset, size: int | None, *, seed: int) -> Dataset:
    """``size`` samples of ``dataset`` drawn once from ``seed`` (in index order), or the whole set."""
    if size is None or size >= len(dataset):
        return dataset
    chosen = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:size]
    return Subset(dataset, sorted(chosen.tolist()))


def knn_pair(spec: DataSpec, model: nn.Module, *, memory: int | None = None, seed: int = 0) -> tuple[Dataset, Any]:
    """``(memory bank, queries)`` of single-view labelled samples for kNN and linear probes (queries None without
    ``data.val``): the training and validation splits, one deterministic clip or image, centre crop."""
    if model.modality == "video":
        from vitzoo.data import eval_transform

        cfg = model.cfg
        _, num_frames, img_size, _ = model.input_shape
        transform = eval_transform(img_size=img_size, mean=cfg.mean, std=cfg.std)

        def split(name: str) -> Dataset:
            sampler = frame_sampler(spec, num_frames, train=False)
            return split_dataset(spec, name, sampler=sampler, transform=transform)

    else:
        transform = _image_eval_transform(model)

        def split(name: str) -> Dataset:
            return _image_folder(spec, name, transform)

    bank = memory_subset(split(spec.train), memory, seed=seed)
    return bank, (split(spec.val) if spec.val is not None else None)


def ssl_datasets(run: RunConfig, model: nn.Module) -> TaskData:
    """The :class:`TaskData` of a self-supervised recipe (see the module docstring)."""
    options = get_task(run.task.name).parse_options(run.task.options)
    spec, views = run.data, options.views
    augmentations = view_augmentations(model, views, hflip=spec.hflip)
    if model.modality == "video":
        from vitzoo.data import ClipTransform

        sampler = training_sampler(spec, model.input_shape[1], views)
        per_view = [ClipTransform(a) for a in augmentations]  # (T, C, H, W) uint8 -> (C, T, H, W) float
        train = split_dataset(spec, spec.train, sampler=sampler, transform=per_view, multi_view=True)
    else:
        train = _image_folder(spec, spec.train, ImageViews(augmentations))
    bank, queries = knn_pair(spec, model, memory=options.knn_memory, seed=run.train.seed)
    val = (bank, queries) if queries is not None else None
    return TaskData(train=train, val=val, classes=getattr(train, "classes", None))


def _image_eval_transform(model: nn.Module) -> v2.Compose:
    cfg = model.cfg
    size = tuple(model.input_shape[-2:])
    return v2.Compose([
        v2.ToImage(),
        v2.Resize(min(size), antialias=True),
        v2.CenterCrop(size),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(cfg.mean), std=list(cfg.std)),
    ])  # fmt: skip


def _image_folder(spec: DataSpec, split: str, transform: Callable) -> Dataset:
    """``root/<split>/<class>/<image>`` read by ``torchvision.datasets.ImageFolder``, undecodable images handled
    as ``data.on_error`` says (:class:`~vitzoo.ssl.image_folder.ImageFolderDataset`)."""
    from vitzoo.ssl.image_folder import ImageFolderDataset

    if spec.layout != "folders":
        raise ConfigError(
            f"data.layout={spec.layout!r}: image models read root/<split>/<class>/<image>; set data.layout: folders"
        )
    folder = Path(spec.root) / split
    if not folder.is_dir():
        raise ConfigError(f"data: image folder {folder} does not exist (data.root / data.train or data.val)")
    return ImageFolderDataset(folder, transform=transform, on_error=spec.on_error)
