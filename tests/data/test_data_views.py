"""Several training views per video (self-supervised learning): shapes, consistency, independence, seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vitzoo.data import (
    DenseSampler,
    SegmentSampler,
    VideoClipDataset,
    eval_transform,
    make_loader,
    read_frame_index,
    train_transform,
    write_video,
)

MEAN = STD = (0.5, 0.5, 0.5)
TIMEOUT = 60


def _train(**kwargs):
    return train_transform(img_size=16, mean=MEAN, std=STD, scale=(0.1, 0.5), **kwargs)


@pytest.fixture(scope="module")
def still(tmp_path_factory):
    """12 identical frames of random texture, losslessly coded: any difference between frames is the transform's."""
    texture = np.random.default_rng(0).integers(0, 256, (1, 32, 48, 3), dtype=np.uint8)
    return write_video(tmp_path_factory.mktemp("still") / "still.mp4", np.repeat(texture, 12, axis=0), 25, crf=0)


def test_views_shape_labels_and_per_view_consistency(still):
    ds = VideoClipDataset(
        [(still, 3)], sampler=DenseSampler(4, 2, train=True, num_clips=3), transform=_train(), multi_view=True
    )
    views, label = ds[(0, 11)]
    assert views.shape == (3, 3, 4, 16, 16) and label == 3  # (V, C, T, H, W)
    for view in views:  # one crop/flip for all frames of a view: identical frames stay identical
        assert all(torch.equal(view[:, 0], view[:, t]) for t in range(1, 4))
    assert not torch.equal(views[0], views[1]) and not torch.equal(views[1], views[2])  # independent draws


def test_frame_consistency_check_can_fail(still):
    """Negative control: augmenting each frame on its own breaks the per-view consistency asserted above."""
    transform = _train()
    ds = VideoClipDataset([(still, 0)], sampler=DenseSampler(4, 2, train=True))
    torch.manual_seed(0)
    clip = ds[(0, 1)][0].permute(1, 0, 2, 3)  # (T, C, H, W) uint8
    per_frame = torch.cat([transform(frame[None]) for frame in clip], dim=1)  # (C, T, h, w)
    assert not all(torch.equal(per_frame[:, 0], per_frame[:, t]) for t in range(1, 4))


def test_each_view_is_its_own_clip(videos):
    """View k holds the frames of the sampler's clip k, drawn from the item's seed."""
    sampler = DenseSampler(4, 2, train=True, num_clips=2)
    ds = VideoClipDataset([(videos.index, 0)], sampler=sampler, multi_view=True)  # no transform: uint8 frames
    for seed in (1, 2, 3):
        views, _ = ds[(0, seed)]  # (2, C, T, H, W)
        expected = sampler(videos.index_frames, np.random.default_rng(seed))  # (2, T)
        got = [[read_frame_index(view[:, t], layout="CHW") for t in range(4)] for view in views]
        assert got == expected.tolist()
    assert expected[0, 0] != expected[1, 0]  # the clips of the last seed start at different frames


def test_one_transform_per_view(videos):
    """Asymmetric views: view 1 uses its own transform (here a deterministic centre crop, checked exactly)."""
    sampler = SegmentSampler(4, train=True, num_clips=2)
    centre = eval_transform(img_size=16, mean=MEAN, std=STD)
    ds = VideoClipDataset([(videos.index, 0)], sampler=sampler, transform=[_train(), centre], multi_view=True)
    raw = VideoClipDataset([(videos.index, 0)], sampler=sampler, multi_view=True)  # same seed: same frames
    views, _ = ds[(0, 5)]
    frames, _ = raw[(0, 5)]  # (2, C, T, H, W) uint8
    assert views.shape == (2, 3, 4, 16, 16)
    torch.testing.assert_close(views[1], centre(frames[1].permute(1, 0, 2, 3)))
    assert not torch.allclose(views[0], centre(frames[0].permute(1, 0, 2, 3)))


def test_one_clip_shared_by_several_transforms(still, videos):
    shared = VideoClipDataset(
        [(videos.index, 0)], sampler=SegmentSampler(4, train=True), transform=[_train(), _train()], multi_view=True
    )
    views, _ = shared[(0, 3)]
    assert views.shape == (2, 3, 4, 16, 16) and not torch.equal(views[0], views[1])
    centre = eval_transform(img_size=16, mean=MEAN, std=STD)
    same = VideoClipDataset(
        [(videos.index, 0)], sampler=SegmentSampler(4, train=True), transform=[centre, centre], multi_view=True
    )
    views, _ = same[(0, 3)]
    assert torch.equal(views[0], views[1])  # the same frames under the same deterministic transform


def test_views_are_reproducible_whatever_the_workers(motion):
    from vitzoo.data import VideoListDataset

    ds = VideoListDataset(
        motion.root, motion.train_list, sampler=DenseSampler(4, 1, train=True, num_clips=2),
        transform=[_train(), _train(hflip=False)], multi_view=True,
    )  # fmt: skip
    assert torch.equal(ds[(1, 9)][0], ds[(1, 9)][0])
    runs = {}
    for workers in (0, 2):
        loader = make_loader(ds, batch_size=4, num_workers=workers, shuffle=True, seed=3, timeout=TIMEOUT)
        runs[workers] = [(clips, labels) for clips, labels in loader]
    for (a, la), (b, lb) in zip(runs[0], runs[2], strict=True):
        assert a.shape == (4, 2, 3, 4, 16, 16)  # (B, V, C, T, H, W)
        assert torch.equal(a, b) and torch.equal(la, lb)
