"""CVRL's temporal interval sampling: ``rho`` clips per video, gaps drawn from a decreasing density.

Qian et al., 2021, "Spatiotemporal Contrastive Video Representation Learning", section 3.2: two clips of one
video are more alike the closer they are, so the start distance ``t`` between them is drawn from a
monotonically decreasing distribution; the linear one, ``P(t) ∝ -t + c``, worked best. Here the density is
linear on ``[0, G]`` and reaches zero at ``G``:

    p(t) = 2 (G - t) / G^2,   F(t) = 1 - (1 - t / G)^2,   so   t = G (1 - sqrt(1 - u)),  u ~ U[0, 1).

:class:`CVRLSampler` has the call signature of the samplers in :mod:`vitzoo.data.sampling`
(``sampler(num_video_frames, rng, fps=None) -> int64 (num_clips, num_frames)``), so the datasets use it
unchanged. For ``rho = num_clips`` clips it draws ``rho - 1`` integer gaps independently, each the floor of
a draw on ``[0, limit + 1)`` (so every gap ``0..limit`` is possible, ``P(gap = k) = F(k + 1) - F(k)``), where
``limit = min(max_gap, free)`` and ``free`` is the number of frames the first clip may start after; then the
first clip's start is uniform over the positions that keep every clip inside the video, and clip ``i``
starts ``gap_i`` frames after it (clip 0 first). A video shorter than one clip gives ``rho`` copies of the
padded clip that :class:`~vitzoo.data.sampling.DenseSampler` would give.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from vitzoo.data.sampling import DenseSampler, RngLike, as_numpy_rng
from vitzoo.schema import check_range


def linear_decreasing_gap(rng: np.random.Generator, max_gap: float, size: int | tuple[int, ...] | None = None):
    """Draws on ``[0, max_gap]`` with density ``2 (max_gap - t) / max_gap^2`` (inverse-CDF sampling)."""
    check_range("max_gap", max_gap, low=0, error=ValueError)
    u = rng.random(size)
    return max_gap * (1.0 - np.sqrt(1.0 - u))


@dataclass(frozen=True)
class CVRLSampler:
    """``num_clips`` clips of ``num_frames`` frames per video, with linearly-decreasing start gaps.

    Attributes:
        num_frames: frames per clip (T).
        frame_interval: step between sampled frames, as in :class:`~vitzoo.data.sampling.DenseSampler`.
        num_clips: clips per video (CVRL's ``rho``; 2 in the paper).
        max_gap: largest start distance in frames, in the units of ``frame_interval`` (scaled by
            ``fps / target_fps`` when ``target_fps`` is set); ``None``: as far as the video allows.
        target_fps: frame rate at which ``frame_interval`` and ``max_gap`` are defined (None: video frames).
        pad: filling of clips longer than the video, ``"loop"`` or ``"repeat_last"``.
    """

    num_frames: int
    frame_interval: float = 1
    num_clips: int = 2
    max_gap: float | None = None
    target_fps: float | None = None
    pad: Literal["loop", "repeat_last"] = "loop"
    _dense: DenseSampler = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        dense = DenseSampler(
            self.num_frames, self.frame_interval, train=True, target_fps=self.target_fps, pad=self.pad
        )  # validates num_frames, frame_interval, target_fps, pad
        object.__setattr__(self, "_dense", dense)
        check_range("num_clips", self.num_clips, low=1, error=ValueError)
        check_range("max_gap", self.max_gap, low=0, optional=True, error=ValueError)  # frames; None: the whole video

    @property
    def train(self) -> bool:
        """Always True: the clips are random (for evaluation use ``DenseSampler(train=False)``)."""
        return True

    def __call__(self, num_video_frames: int, rng: RngLike = None, *, fps: float | None = None) -> np.ndarray:
        """Indices ``(num_clips, num_frames)``, clip 0 the earliest."""
        if num_video_frames < 1:
            raise ValueError(f"cannot sample from a video with {num_video_frames} frames")
        if rng is None:
            raise ValueError("CVRL sampling is random: pass rng (numpy/torch Generator or seed)")
        rng = as_numpy_rng(rng)
        step = self._dense.step(fps)
        offsets = np.floor(step * np.arange(self.num_frames) + 0.5).astype(np.int64)  # (T,)
        free = num_video_frames - int(offsets[-1]) - 1  # latest start of one clip
        if free < 0:  # one clip is longer than the video: every clip is the padded one
            clip = self._dense(num_video_frames, rng, fps=fps)[0]  # (T,)
            return np.repeat(clip[None], self.num_clips, axis=0)
        limit = free if self.max_gap is None else min(free, int(self.max_gap * step / self.frame_interval))
        gaps = np.floor(linear_decreasing_gap(rng, limit + 1, size=self.num_clips - 1)).astype(np.int64)
        gaps = np.minimum(gaps, limit)  # guards the u -> 1 edge of the float draw
        first = rng.integers(0, free - int(gaps.max(initial=0)) + 1)
        starts = first + np.concatenate([[0], gaps])  # (K,)
        return starts[:, None] + offsets[None, :]  # (K, T)
