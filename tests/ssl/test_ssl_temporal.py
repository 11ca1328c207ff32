"""CVRL's temporal sampler: the gap distribution (Kolmogorov-Smirnov / DKW bounds), bounds, the sampler interface."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vitzoo.data.sampling import FrameSampler
from vitzoo.ssl.temporal import CVRLSampler, linear_decreasing_gap


def linear_cdf(t: np.ndarray, g: float) -> np.ndarray:
    t = np.clip(t, 0.0, g)
    return 1.0 - (1.0 - t / g) ** 2


def ks_statistic(samples: np.ndarray, cdf) -> float:
    """sup_x |F_n(x) - F(x)| for a continuous F, evaluated on both sides of every jump of F_n."""
    x = np.sort(samples)
    n = len(x)
    f = cdf(x)
    return float(max((np.arange(1, n + 1) / n - f).max(), (f - np.arange(n) / n).max()))


def critical(n: int, alpha: float = 1e-3) -> float:
    """Asymptotic KS (and DKW) bound: P(D_n > c) <= alpha for c = sqrt(ln(2 / alpha) / (2 n))."""
    return math.sqrt(math.log(2 / alpha) / (2 * n))


N = 20_000


def test_gap_draws_follow_the_linear_density():
    draws = linear_decreasing_gap(np.random.default_rng(0), 40.0, size=N)
    assert draws.min() >= 0 and draws.max() <= 40
    assert ks_statistic(draws, lambda t: linear_cdf(t, 40.0)) < critical(N)


def test_ks_check_rejects_a_uniform_gap():
    """Negative control: uniform gaps (the naive sampler) are far outside the bound."""
    draws = np.random.default_rng(0).uniform(0, 40.0, size=N)
    assert ks_statistic(draws, lambda t: linear_cdf(t, 40.0)) > 10 * critical(N)


def sampled_gaps(sampler: CVRLSampler, num_video_frames: int, n: int, fps: float | None = None) -> np.ndarray:
    rng = np.random.default_rng(1)
    idx = np.stack([sampler(num_video_frames, rng, fps=fps) for _ in range(n)])  # (n, K, T)
    return idx[:, 1:, 0] - idx[:, :1, 0]  # (n, K - 1) start distances to clip 0


def test_sampler_gaps_follow_the_discrete_linear_law():
    # 100 frames, clips of 8 x 2 -> span 15, free = 85 starts after 0; gaps k in 0..85, P(k) = F(k + 1) - F(k)
    sampler = CVRLSampler(num_frames=8, frame_interval=2, num_clips=2)
    gaps = sampled_gaps(sampler, 100, 5_000).ravel()
    assert gaps.min() >= 0 and gaps.max() <= 85
    k = np.arange(86)
    empirical = np.searchsorted(np.sort(gaps), k, side="right") / len(gaps)  # F_n(k)
    exact = linear_cdf(k + 1.0, 86.0)  # P(gap <= k)
    assert np.abs(empirical - exact).max() < critical(len(gaps))  # DKW holds for discrete laws too
    uniform = (k + 1.0) / 86.0
    assert np.abs(empirical - uniform).max() > 5 * critical(len(gaps))


def test_clips_stay_inside_the_video_and_respect_max_gap():
    sampler = CVRLSampler(num_frames=4, frame_interval=3, num_clips=4, max_gap=10)
    rng = np.random.default_rng(2)
    for length in (12, 13, 30, 200):
        idx = sampler(length, rng)
        assert idx.shape == (4, 4) and idx.dtype == np.int64
        assert idx.min() >= 0 and idx.max() < length
        assert (np.diff(idx, axis=1) == 3).all()  # frames of a clip are frame_interval apart
        assert (idx[1:, 0] - idx[0, 0] >= 0).all() and (idx[1:, 0] - idx[0, 0] <= 10).all()


def test_max_gap_is_scaled_with_fps():
    sampler = CVRLSampler(num_frames=4, frame_interval=1, num_clips=2, max_gap=5, target_fps=10)
    gaps = sampled_gaps(sampler, 300, 300, fps=30.0)
    assert gaps.max() <= 15 and gaps.max() > 5  # at 30 fps, 5 frames at 10 fps are 15 video frames
    with pytest.raises(ValueError, match="needs the video's fps"):
        sampler(300, 0)


def test_short_video_repeats_the_padded_clip():
    idx = CVRLSampler(num_frames=8, num_clips=3)(5, 0)
    assert idx.tolist() == [[0, 1, 2, 3, 4, 0, 1, 2]] * 3


def test_sampler_interface_matches_the_data_samplers():
    sampler: FrameSampler = CVRLSampler(num_frames=4, num_clips=2)
    assert sampler.num_frames == 4 and sampler.num_clips == 2 and sampler.train
    a = sampler(50, torch.Generator().manual_seed(3))
    b = sampler(50, 7, fps=25.0)
    assert a.shape == b.shape == (2, 4)
    assert np.array_equal(sampler(50, 7), sampler(50, np.random.default_rng(7)))
    with pytest.raises(ValueError, match="pass rng"):
        sampler(50)
    with pytest.raises(ValueError, match="num_clips"):
        CVRLSampler(num_frames=4, num_clips=0)
