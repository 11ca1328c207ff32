"""Frame samplers, tested exhaustively on video lengths alone (no files)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vitzoo.data import DenseSampler, SegmentSampler, as_numpy_rng

LENGTHS = [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 301]


# -- SegmentSampler -----------------------------------------------------------------------------
@pytest.mark.parametrize("num_segments", [1, 3, 8, 16])
@pytest.mark.parametrize("n", LENGTHS)
def test_segment_train_one_frame_per_segment(n, num_segments):
    sampler = SegmentSampler(num_segments, train=True)
    rng = np.random.default_rng(0)
    seg = n / num_segments
    for _ in range(20):
        idx = sampler(n, rng)
        assert idx.shape == (1, num_segments) and idx.dtype == np.int64
        assert ((idx >= 0) & (idx < n)).all()
        assert (np.diff(idx[0]) >= 0).all()  # temporal order kept
        lo = np.floor(seg * np.arange(num_segments))
        hi = np.maximum(lo, np.ceil(seg * np.arange(1, num_segments + 1)) - 1)
        assert ((idx[0] >= lo) & (idx[0] <= hi)).all()  # inside its own segment


def test_segment_train_is_random_and_covers_each_segment():
    sampler = SegmentSampler(4, train=True)
    rng = np.random.default_rng(0)
    draws = np.concatenate([sampler(40, rng) for _ in range(400)])  # (400, 4)
    for s in range(4):
        assert set(draws[:, s].tolist()) == set(range(10 * s, 10 * s + 10))  # every frame of segment s


def test_segment_train_reproducible_with_seed():
    sampler = SegmentSampler(8, train=True)
    a = sampler(100, np.random.default_rng(7))
    b = sampler(100, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    c = sampler(100, torch.Generator().manual_seed(3))
    np.testing.assert_array_equal(c, sampler(100, torch.Generator().manual_seed(3)))
    np.testing.assert_array_equal(sampler(100, 5), sampler(100, 5))


@pytest.mark.parametrize("n", LENGTHS)
def test_segment_eval_centre_and_deterministic(n):
    sampler = SegmentSampler(8)
    idx = sampler(n)
    np.testing.assert_array_equal(idx, sampler(n, np.random.default_rng(1)))  # rng ignored
    expected = np.floor(n / 8 * (np.arange(8) + 0.5)).astype(np.int64)
    np.testing.assert_array_equal(idx[0], np.clip(expected, 0, n - 1))


def test_segment_eval_examples():
    np.testing.assert_array_equal(SegmentSampler(4)(40)[0], [5, 15, 25, 35])
    np.testing.assert_array_equal(SegmentSampler(8)(3)[0], [0, 0, 0, 1, 1, 2, 2, 2])  # short: repeats


def test_segment_multiview_offsets():
    idx = SegmentSampler(4, num_clips=2)(40)
    np.testing.assert_array_equal(idx, [[2, 12, 22, 32], [7, 17, 27, 37]])
    train = SegmentSampler(4, num_clips=3, train=True)(40, np.random.default_rng(0))
    assert train.shape == (3, 4)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_segment_short_video_repeats_in_order(n):
    idx = SegmentSampler(8)(n)[0]
    assert (np.diff(idx) >= 0).all()
    assert set(idx.tolist()) == set(range(n))  # every frame used, in order, repeated


# -- DenseSampler -------------------------------------------------------------------------------
@pytest.mark.parametrize("interval", [1, 2, 4])
@pytest.mark.parametrize("num_frames", [1, 4, 8])
@pytest.mark.parametrize("n", LENGTHS)
def test_dense_train_contiguous_window(n, num_frames, interval):
    sampler = DenseSampler(num_frames, interval, train=True)
    rng = np.random.default_rng(0)
    span = (num_frames - 1) * interval + 1
    starts = set()
    for _ in range(30):
        idx = sampler(n, rng)
        assert idx.shape == (1, num_frames)
        assert ((idx >= 0) & (idx < n)).all()
        if n >= span:
            np.testing.assert_array_equal(np.diff(idx[0]), np.full(num_frames - 1, interval))
            starts.add(int(idx[0, 0]))
        else:  # too short: starts at 0 and loops
            np.testing.assert_array_equal(idx[0], (np.arange(num_frames) * interval) % n)
    if n - span >= 3:
        assert len(starts) > 1  # random start


def test_dense_train_start_uniform_over_valid_range():
    sampler = DenseSampler(4, 2, train=True)  # span 7
    rng = np.random.default_rng(0)
    starts = {int(sampler(10, rng)[0, 0]) for _ in range(500)}
    assert starts == {0, 1, 2, 3}


@pytest.mark.parametrize("n", LENGTHS)
def test_dense_eval_centred_and_deterministic(n):
    sampler = DenseSampler(4, 2)
    idx = sampler(n)
    np.testing.assert_array_equal(idx, sampler(n))
    if n >= 7:
        free = n - 7
        assert idx[0, 0] == np.floor(free / 2 + 0.5)


def test_dense_examples():
    np.testing.assert_array_equal(DenseSampler(4, 2)(11)[0], [2, 4, 6, 8])
    np.testing.assert_array_equal(DenseSampler(4, 1)(3)[0], [0, 1, 2, 0])  # loop
    np.testing.assert_array_equal(DenseSampler(6, 1, pad="repeat_last")(3)[0], [0, 1, 2, 2, 2, 2])
    np.testing.assert_array_equal(DenseSampler(3, 2)(1)[0], [0, 0, 0])


def test_dense_multiview_evenly_spread():
    idx = DenseSampler(4, 1, num_clips=4)(40)  # free range 36
    assert idx.shape == (4, 4)
    np.testing.assert_array_equal(idx[:, 0], [5, 14, 23, 32])  # round(36 * (k + .5) / 4)
    assert (np.diff(idx[:, 0]) > 0).all()
    short = DenseSampler(8, 1, num_clips=3)(5)
    assert short.shape == (3, 8) and (short == short[0]).all()  # too short: identical views


def test_multiview_counts():
    for num_clips in (1, 2, 4, 10):
        assert DenseSampler(8, 2, num_clips=num_clips)(100).shape == (num_clips, 8)
        assert SegmentSampler(8, num_clips=num_clips)(100).shape == (num_clips, 8)


# -- fps normalisation ----------------------------------------------------------------------------
@pytest.mark.parametrize("fps", [12.5, 24.0, 25.0, 29.97, 30.0, 50.0, 60.0])
def test_fps_normalised_clips_cover_same_seconds(fps):
    sampler = DenseSampler(8, 2, target_fps=25.0)  # 8 frames every 2/25 s: 0.56 s from first to last
    idx = sampler(1000, fps=fps)[0]
    seconds = (idx[-1] - idx[0]) / fps
    assert seconds == pytest.approx(7 * 2 / 25.0, abs=1.0 / fps)
    assert sampler.step(fps) == pytest.approx(2 * fps / 25.0)


def test_fps_normalisation_off_ignores_fps():
    sampler = DenseSampler(8, 2)
    np.testing.assert_array_equal(sampler(100, fps=60.0), sampler(100, fps=15.0))


def test_fps_normalisation_needs_fps():
    with pytest.raises(ValueError, match="fps"):
        DenseSampler(8, 2, target_fps=30)(100)
    with pytest.raises(ValueError, match="fps"):
        DenseSampler(8, 2, target_fps=30)(100, fps=0.0)


def test_fps_normalised_low_fps_repeats_frames():
    idx = DenseSampler(4, 1, target_fps=30)(100, fps=15.0)[0]  # step 0.5 frames
    assert (np.diff(idx) >= 0).all() and idx[-1] - idx[0] <= 2


# -- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize("sampler", [SegmentSampler(4), SegmentSampler(4, train=True), DenseSampler(4, 2)])
@pytest.mark.parametrize("n", [0, -3])
def test_zero_frame_video_is_an_error(sampler, n):
    with pytest.raises(ValueError, match="frames"):
        sampler(n, np.random.default_rng(0))


def test_training_needs_rng():
    with pytest.raises(ValueError, match="rng"):
        SegmentSampler(4, train=True)(10)
    with pytest.raises(ValueError, match="rng"):
        DenseSampler(4, train=True)(10)


@pytest.mark.parametrize(
    "build",
    [
        lambda: SegmentSampler(0),
        lambda: SegmentSampler(4, num_clips=0),
        lambda: DenseSampler(0),
        lambda: DenseSampler(4, 0),
        lambda: DenseSampler(4, 1, target_fps=0),
        lambda: DenseSampler(4, 1, pad="mirror"),
    ],
)
def test_invalid_configs(build):
    with pytest.raises(ValueError):
        build()


def test_as_numpy_rng_rejects_other_types():
    with pytest.raises(TypeError):
        as_numpy_rng("seed")
