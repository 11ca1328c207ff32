"""Frame-index samplers: pure functions of (video length, rng) -> index arrays. No video file needed.

Every sampler is a frozen dataclass called as ``sampler(num_video_frames, rng, fps=None)`` and returns
an int64 array of shape ``(num_clips, num_frames)``: one row per temporal view, indices in
``[0, num_video_frames)``. ``train=True`` draws random positions from ``rng``; ``train=False`` is
deterministic (``rng`` unused) and spreads ``num_clips`` views evenly for multi-view testing.

Short videos (fewer frames than a clip needs) are padded, never rejected:

* :class:`SegmentSampler` with fewer frames than segments repeats frames (segments shorter than one
  frame map several segments onto the same frame, in order), e.g. 3 frames, 8 segments ->
  ``[0 0 0 1 1 2 2 2]``.
* :class:`DenseSampler` starts at frame 0 and, with ``pad="loop"`` (default), wraps around to the
  beginning (``[0 1 2 0 1 2 ...]``), or with ``pad="repeat_last"`` repeats the final frame.

A video with zero frames is an error (``ValueError``). Bad options (``num_frames=0``, ``frame_interval=0``,
``num_clips=0``, a negative ``target_fps``, ...) raise :class:`~vitzoo.data.errors.DataConfigError` when the
sampler is constructed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import torch

from vitzoo.data.errors import DataConfigError

RngLike = np.random.Generator | torch.Generator | int | None
PAD_MODES = ("loop", "repeat_last")


class FrameSampler(Protocol):
    """What datasets need from a sampler."""

    num_frames: int  # frames per clip (T)
    num_clips: int  # temporal views per video
    train: bool

    def __call__(self, num_video_frames: int, rng: RngLike = None, *, fps: float | None = None) -> np.ndarray:
        """Return ``(num_clips, num_frames)`` int64 frame indices."""
        ...


def as_numpy_rng(rng: RngLike) -> np.random.Generator:
    """Accept a numpy ``Generator``, a ``torch.Generator`` (one seed is drawn from it) or an int seed."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, torch.Generator):
        return np.random.default_rng(int(torch.randint(0, 2**62, (), generator=rng)))
    if isinstance(rng, int | np.integer):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy Generator, torch.Generator or int seed, got {type(rng).__name__}")


def _check_video_length(num_video_frames: int) -> None:
    if num_video_frames < 1:
        raise ValueError(f"cannot sample from a video with {num_video_frames} frames")


def _check_count(owner: str, name: str, value, meaning: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise DataConfigError(f"{owner}: {name}={value!r}; it is the number of {meaning}, use an integer >= 1")


def _check_rate(owner: str, name: str, value, meaning: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not 0 < value < math.inf:
        raise DataConfigError(f"{owner}: {name}={value!r}; it is {meaning}, use a number > 0")


@dataclass(frozen=True)
class SegmentSampler:
    """TSN-style uniform segment sampling: split the video into ``num_segments`` equal segments and
    take one frame from each (a random one in training, the centre one in evaluation).

    With ``num_clips = K > 1`` in evaluation, view ``k`` takes the frame at fraction ``(k + 0.5) / K``
    of every segment (K evenly shifted copies); in training, K independent random draws.

    Attributes:
        num_segments: frames per clip (T).
        train: random (True) or centred, deterministic (False).
        num_clips: temporal views per video.
    """

    num_segments: int
    train: bool = False
    num_clips: int = 1

    def __post_init__(self) -> None:
        _check_count("SegmentSampler", "num_segments", self.num_segments, "frames per clip (segments)")
        _check_count("SegmentSampler", "num_clips", self.num_clips, "clips (temporal views) per video")

    @property
    def num_frames(self) -> int:
        """Frames per clip (``num_segments``)."""
        return self.num_segments

    def __call__(self, num_video_frames: int, rng: RngLike = None, *, fps: float | None = None) -> np.ndarray:
        """Indices ``(num_clips, num_segments)``; ``fps`` is accepted for interface parity and unused."""
        _check_video_length(num_video_frames)
        seg_len = num_video_frames / self.num_segments  # may be < 1 for short videos
        base = np.arange(self.num_segments, dtype=np.float64)
        if self.train:
            if rng is None:
                raise ValueError("training sampling is random: pass rng (numpy/torch Generator or seed)")
            frac = as_numpy_rng(rng).random((self.num_clips, self.num_segments))  # (K, T) in [0, 1)
        else:
            frac = ((np.arange(self.num_clips) + 0.5) / self.num_clips)[:, None]  # (K, 1)
        idx = np.floor(seg_len * (base[None, :] + frac)).astype(np.int64)
        return np.clip(idx, 0, num_video_frames - 1)


@dataclass(frozen=True)
class DenseSampler:
    """Dense clip sampling: ``num_frames`` frames, ``frame_interval`` apart, from a contiguous window.

    Training picks the window start uniformly at random; evaluation centres one window, or spreads
    ``num_clips`` windows evenly (window ``k`` starts at fraction ``(k + 0.5) / K`` of the free range).

    fps normalisation: with ``target_fps`` set, ``frame_interval`` is measured at ``target_fps`` and
    the actual step becomes ``frame_interval * fps / target_fps`` (rounded per frame), so every clip
    spans ``num_frames * frame_interval / target_fps`` seconds whatever the video's frame rate.
    Calls must then pass ``fps``.

    Attributes:
        num_frames: frames per clip (T).
        frame_interval: step between sampled frames (a float is allowed).
        train: random window (True) or deterministic windows (False).
        num_clips: temporal views per video.
        target_fps: frame rate at which ``frame_interval`` is defined; ``None`` disables normalisation.
        pad: how windows longer than the video are filled: ``"loop"`` or ``"repeat_last"``.
    """

    num_frames: int
    frame_interval: float = 1
    train: bool = False
    num_clips: int = 1
    target_fps: float | None = None
    pad: Literal["loop", "repeat_last"] = "loop"

    def __post_init__(self) -> None:
        _check_count("DenseSampler", "num_frames", self.num_frames, "frames per clip")
        _check_rate("DenseSampler", "frame_interval", self.frame_interval, "the step between sampled frames")
        _check_count("DenseSampler", "num_clips", self.num_clips, "clips (temporal views) per video")
        if self.target_fps is not None:
            _check_rate("DenseSampler", "target_fps", self.target_fps, "the frame rate frame_interval refers to")
        if self.pad not in PAD_MODES:
            raise DataConfigError(f"DenseSampler: pad={self.pad!r}; use one of {PAD_MODES}")

    def step(self, fps: float | None = None) -> float:
        """Distance in video frames between consecutive sampled frames for a video at ``fps``."""
        if self.target_fps is None:
            return float(self.frame_interval)
        if fps is None or not fps > 0:
            raise ValueError(f"target_fps={self.target_fps} needs the video's fps, got {fps}")
        return self.frame_interval * fps / self.target_fps

    def __call__(self, num_video_frames: int, rng: RngLike = None, *, fps: float | None = None) -> np.ndarray:
        """Indices ``(num_clips, num_frames)``."""
        _check_video_length(num_video_frames)
        offsets = np.floor(self.step(fps) * np.arange(self.num_frames) + 0.5).astype(np.int64)  # (T,)
        free = num_video_frames - int(offsets[-1]) - 1  # number of valid window starts minus one
        if free < 0:  # window longer than the video: start at 0 and pad
            starts = np.zeros(self.num_clips, dtype=np.int64)
        elif self.train:
            if rng is None:
                raise ValueError("training sampling is random: pass rng (numpy/torch Generator or seed)")
            starts = as_numpy_rng(rng).integers(0, free + 1, size=self.num_clips)
        else:
            starts = np.floor(free * (np.arange(self.num_clips) + 0.5) / self.num_clips + 0.5).astype(np.int64)
        idx = starts[:, None] + offsets[None, :]  # (K, T)
        if self.pad == "loop":
            return idx % num_video_frames
        return np.minimum(idx, num_video_frames - 1)
