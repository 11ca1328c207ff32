"""Annotation-list and class-per-folder datasets, multi-view output, and the bad-file policy."""

from __future__ import annotations

import logging
import shutil

import pytest
import torch

from vitzoo.data import (
    DataConfigError,
    DenseSampler,
    SegmentSampler,
    VideoClipDataset,
    VideoDecodeError,
    VideoFolderDataset,
    VideoListDataset,
    eval_transform,
    read_frame_index,
    train_transform,
)

MEAN = STD = (0.5, 0.5, 0.5)


def _train(img_size=24):
    return train_transform(img_size=img_size, mean=MEAN, std=STD, hflip=False)


def test_list_dataset_train_items(motion):
    ds = VideoListDataset(
        motion.root, motion.train_list, classes=motion.classes_file,
        sampler=SegmentSampler(4, train=True), transform=_train(),
    )  # fmt: skip
    assert len(ds) == 8 and ds.classes == motion.classes and ds.num_classes == 4
    clip, label = ds[3]
    assert clip.shape == (3, 4, 24, 24) and clip.dtype == torch.float32
    assert label == ds.labels[3] and 0 <= label < 4
    assert ds[-1][1] == ds.labels[-1]
    with pytest.raises(IndexError):
        ds[8]


def test_dataset_decodes_the_sampled_frames(videos):
    sampler = DenseSampler(5, 3)
    ds = VideoClipDataset([(videos.index, 7)], sampler=sampler)  # no transform: uint8 (C, T, H, W)
    clip, label = ds[0]
    assert label == 7 and clip.dtype == torch.uint8 and clip.shape == (3, 5, 48, 64)
    expected = sampler(videos.index_frames)[0].tolist()
    assert [read_frame_index(clip[:, t], layout="CHW") for t in range(5)] == expected


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_fps_normalised_sampling_on_real_files(videos, backend):
    sampler = DenseSampler(4, 1, target_fps=25.0)  # 4 frames 1/25 s apart
    for path, step in [(videos.index, 1), (videos.fps50, 2)]:  # 25 fps and 50 fps files
        clip, _ = VideoClipDataset([(path, 0)], sampler=sampler, backend=backend)[0]
        got = [read_frame_index(clip[:, t], layout="CHW") for t in range(4)]
        assert [b - a for a, b in zip(got, got[1:], strict=False)] == [step] * 3


def test_decode_short_side(videos):
    ds = VideoClipDataset([(videos.index, 0)], sampler=SegmentSampler(2), decode_short_side=24)
    assert ds[0][0].shape == (3, 2, 24, 32)


def test_multi_view_stacks_clips_and_crops(motion):
    ds = VideoListDataset(
        motion.root, motion.val_list, classes=motion.classes_file,
        sampler=DenseSampler(4, 1, num_clips=2),
        transform=eval_transform(img_size=16, mean=MEAN, std=STD, num_crops=3), multi_view=True,
    )  # fmt: skip
    views, label = ds[0]
    assert views.shape == (6, 3, 4, 16, 16)  # V = 2 clips x 3 crops
    assert label == ds.labels[0]
    single = VideoListDataset(
        motion.root, motion.val_list, sampler=DenseSampler(4, 1),
        transform=eval_transform(img_size=16, mean=MEAN, std=STD), multi_view=True,
    )  # fmt: skip
    assert single[0][0].shape == (1, 3, 4, 16, 16)  # V = 1 keeps the view axis


def test_multiple_views_need_multi_view(motion):
    with pytest.raises(DataConfigError, match="multi_view=True"):  # found when the dataset is built
        VideoListDataset(motion.root, motion.val_list, sampler=DenseSampler(4, num_clips=2))


def test_seeded_keys_are_deterministic(motion):
    ds = VideoListDataset(motion.root, motion.train_list, sampler=SegmentSampler(4, train=True), transform=_train())
    a, b, c = ds[(2, 123)][0], ds[(2, 123)][0], ds[(2, 124)][0]
    assert torch.equal(a, b) and not torch.equal(a, c)
    state = torch.get_rng_state()
    ds[(2, 5)]
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is left alone


def test_folder_dataset(tmp_path, write):
    for name in ["b/one.mp4", "a/two.MP4", "a/sub/three.mp4", "c/readme.txt", "a/four.mp4"]:
        if name.endswith("txt"):
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text("not a video")
        else:
            write(name)
    ds = VideoFolderDataset(tmp_path, sampler=SegmentSampler(2))
    assert ds.classes == ["a", "b", "c"]  # sorted folder names
    assert [(p.relative_to(tmp_path).as_posix(), y) for p, y in ds.samples] == [
        ("a/four.mp4", 0), ("a/sub/three.mp4", 0), ("a/two.MP4", 0), ("b/one.mp4", 1),
    ]  # fmt: skip
    assert ds[3][0].shape == (3, 2, 32, 32) and ds[3][1] == 1

    (tmp_path / "classes.txt").write_text("b\na\n")  # fixes label order and the folders used
    ds = VideoFolderDataset(tmp_path, classes=tmp_path / "classes.txt", sampler=SegmentSampler(2))
    assert ds.classes == ["b", "a"] and ds.labels == [0, 1, 1, 1]
    with pytest.raises(ValueError, match="does not exist"):
        VideoFolderDataset(tmp_path, classes=["a", "zebra"], sampler=SegmentSampler(2))
    with pytest.raises(ValueError, match="outside"):
        VideoFolderDataset(tmp_path, classes=["../a"], sampler=SegmentSampler(2))


def test_folder_dataset_errors(tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        VideoFolderDataset(tmp_path / "nope", sampler=SegmentSampler(2))
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(ValueError, match="no videos"):
        VideoFolderDataset(tmp_path, sampler=SegmentSampler(2))


def _mixed_samples(videos):
    """Sample 1 and 2 are broken, 0 and 3 are fine."""
    return [
        (videos.index, 0),
        (videos.broken["truncated"], 1),
        (videos.broken["missing"], 2),
        (videos.short, 3),
    ]


def test_on_error_raise(videos):
    ds = VideoClipDataset(_mixed_samples(videos), sampler=SegmentSampler(2))
    assert ds[0][1] == 0
    with pytest.raises(VideoDecodeError) as info:
        ds[1]
    assert info.value.path == videos.broken["truncated"]
    assert ds.num_failures == 0


def test_on_error_skip_substitutes_and_counts(videos, caplog):
    ds = VideoClipDataset(_mixed_samples(videos), sampler=SegmentSampler(2), on_error="skip", return_info=True)
    with caplog.at_level(logging.WARNING, logger="vitzoo.data.datasets"):
        clip, label, info = ds[1]  # 1 and 2 fail -> sample 3
    assert label == 3 and clip.shape == (3, 2, 32, 32)
    assert info == {"index": 1, "source_index": 3, "substituted": True}
    assert ds.num_failures == 2
    assert "truncated.mp4" in caplog.text and "does_not_exist.mp4" in caplog.text
    assert ds[0][2] == {"index": 0, "source_index": 0, "substituted": False}
    ds[2]  # 2 fails -> 3
    assert ds.num_failures == 3
    ds.failures.reset()
    assert ds.num_failures == 0


def test_on_error_skip_wraps_around_deterministically(videos):
    samples = [(videos.index, 0), (videos.broken["text"], 1)]
    ds = VideoClipDataset(samples, sampler=SegmentSampler(2), on_error="skip", return_info=True)
    assert ds[1][2]["source_index"] == 0  # last index wraps to 0
    assert ds[1][2]["source_index"] == 0


def test_on_error_skip_gives_up(videos):
    broken = [(videos.broken[k], 0) for k in ("text", "truncated", "random_bytes")]
    ds = VideoClipDataset(broken, sampler=SegmentSampler(2), on_error="skip", max_retries=5)
    with pytest.raises(RuntimeError, match="consecutive samples"):
        ds[0]
    assert ds.num_failures == 6


def test_annotation_dataset_with_broken_entries(tmp_path, videos):
    shutil.copy(videos.index, tmp_path / "good.mp4")
    shutil.copy(videos.broken["random_bytes"], tmp_path / "bad.mp4")
    (tmp_path / "list.txt").write_text("good.mp4 0\nbad.mp4 1\nmissing.mp4 1\n")
    ds = VideoListDataset(tmp_path, tmp_path / "list.txt", sampler=SegmentSampler(2), on_error="skip")
    assert [ds[i][1] for i in range(3)] == [0, 0, 0]
    assert ds.num_failures == 3  # failed attempts: missing.mp4 failed as itself and as bad.mp4's substitute


@pytest.mark.parametrize(
    "kwargs",
    [{"on_error": "ignore"}, {"max_retries": -1}, {"backend": "cv2"}, {"decode_short_side": 0}],
)
def test_invalid_dataset_options(videos, kwargs):
    with pytest.raises(ValueError):
        VideoClipDataset([(videos.index, 0)], sampler=SegmentSampler(2), **kwargs)
