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
"""

from vitzoo.data.annotations import parse_annotation_file, read_class_names, resolve_in_root
from vitzoo.data.datasets import VIDEO_EXTENSIONS, VideoClipDataset, VideoFolderDataset, VideoListDataset
from vitzoo.data.errors import VideoDecodeError
from vitzoo.data.failures import FailureCounter
from vitzoo.data.loader import SeededSampler, make_loader, seed_worker, set_epoch
from vitzoo.data.mixup import MixupConfig, VideoMixup, make_mixup
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
    "BACKENDS",
    "VIDEO_EXTENSIONS",
    "ClipTransform",
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
    "eval_transform",
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
    "three_crop",
    "train_transform",
    "write_video",
]
