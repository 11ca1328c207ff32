"""Video data pipeline: decoding, frame sampling, clip transforms, datasets and loaders.

Typical training setup::

    from vitzoo.data import (DenseSampler, VideoListDataset, make_loader, make_mixup,
                             train_transform)

    dataset = VideoListDataset(
        "data/kinetics", "data/kinetics/train.txt", classes="data/kinetics/classes.txt",
        sampler=DenseSampler(num_frames=16, frame_interval=4, train=True),
        transform=train_transform(img_size=224, mean=cfg.mean, std=cfg.std, randaugment="rand-m9-n2"),
        on_error="skip",
    )
    loader = make_loader(dataset, batch_size=8, num_workers=2, shuffle=True, seed=0, drop_last=True)
    mixup = make_mixup(num_classes=dataset.num_classes)
    for clips, labels in loader:          # clips: (B, C, T, H, W)
        clips, targets = mixup(clips, labels)

Two augmented views per video for self-supervised training (each view its own random clip and its
own random crop/flip, drawn once for all its frames; ``transform`` may also be one transform per view)::

    views = VideoListDataset(
        "data/kinetics", "data/kinetics/train.txt",
        sampler=DenseSampler(num_frames=16, frame_interval=4, train=True, num_clips=2),
        transform=train_transform(img_size=224, mean=cfg.mean, std=cfg.std),  # or [t1, t2]: one per view
        multi_view=True,
    )
    for clips, labels in make_loader(views, batch_size=8, shuffle=True, seed=0, drop_last=True):
        view_a, view_b = clips.unbind(1)  # clips: (B, V=2, C, T, H, W)

Errors: :class:`VideoDecodeError` for a file that cannot be used (skippable with ``on_error="skip"``),
:class:`DataConfigError` for a bad option, :class:`AnnotationError` (a ``DataConfigError``) for a bad
annotation or class-names file; the last two are ``ValueError`` with a one-line message.

A recipe's ``data:`` section is a :class:`DataSpec`; :func:`build_datasets` turns it into the training and
validation sets of a model (``recipe.py``).
"""

from vitzoo.data.annotations import parse_annotation_file, read_class_names, resolve_in_root
from vitzoo.data.datasets import VIDEO_EXTENSIONS, VideoClipDataset, VideoFolderDataset, VideoListDataset
from vitzoo.data.errors import AnnotationError, DataConfigError, VideoDecodeError
from vitzoo.data.failures import FailureCounter
from vitzoo.data.loader import SeededSampler, make_loader, seed_worker, set_epoch
from vitzoo.data.mixup import MixupConfig, VideoMixup, make_mixup
from vitzoo.data.recipe import DataSpec, build_datasets, frame_sampler, split_dataset
from vitzoo.data.sampling import DenseSampler, FrameSampler, SegmentSampler, as_numpy_rng
from vitzoo.data.synthetic import (
    MotionDataset,
    index_coded_frames,
    make_motion_dataset,
    make_test_video,
    motion_clip,
    read_frame_index,
    write_clip_dataset,
    write_video,
)
from vitzoo.data.transforms import (
    ClipTransform,
    eval_transform,
    parse_randaugment,
    three_crop,
    train_transform,
)
from vitzoo.data.video import BACKENDS, VideoReader

__all__ = [
    "AnnotationError",
    "BACKENDS",
    "VIDEO_EXTENSIONS",
    "ClipTransform",
    "DataConfigError",
    "DataSpec",
    "DenseSampler",
    "FailureCounter",
    "FrameSampler",
    "MixupConfig",
    "MotionDataset",
    "SeededSampler",
    "SegmentSampler",
    "VideoClipDataset",
    "VideoDecodeError",
    "VideoFolderDataset",
    "VideoListDataset",
    "VideoMixup",
    "VideoReader",
    "as_numpy_rng",
    "build_datasets",
    "eval_transform",
    "frame_sampler",
    "index_coded_frames",
    "make_loader",
    "make_mixup",
    "make_motion_dataset",
    "make_test_video",
    "motion_clip",
    "write_clip_dataset",
    "parse_annotation_file",
    "parse_randaugment",
    "read_class_names",
    "read_frame_index",
    "resolve_in_root",
    "seed_worker",
    "set_epoch",
    "split_dataset",
    "three_crop",
    "train_transform",
    "write_video",
]
