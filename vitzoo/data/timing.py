"""Frame count, duration and average frame rate from frame timestamps; the truncation check.

Both decoder backends describe a file the same way:

* the frames **present**: how many there are and the presentation time of each (from the packets, no
  decoding), which give the duration and the average frame rate (:func:`timing_from_starts`);
* what the container's header **declares** (:class:`Declared`): a frame count (mp4, mov, avi) or a
  duration of the video stream (mkv and webm store one).

A file whose frames present fall short of what its header declares is truncated
(:func:`truncation_cause`); :class:`vitzoo.data.VideoReader` refuses it when it is opened.

Why timestamps: the frame rate a container states (``r_frame_rate``, mkv's default duration) is
nominal; in a variable-frame-rate file it can be far from the real one (a 3 s, 32-frame mkv states
25 fps, so ``num_frames / fps`` says 1.28 s). The duration here is the time from the first frame's
start to the last frame's end, and the average frame rate is ``num_frames / duration``. For a
constant-rate file (the average within 0.1 % of the nominal rate) the nominal rate is kept exactly,
so 30000/1001 stays 29.97002997...
"""

from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CFR_TOLERANCE = 1e-3  # average rate within 0.1 % of the nominal one: a constant-rate file
MISSING_FRAMES_TOLERATED = 2.0  # duration check: more than this many frame periods missing is truncation
_DURATION_TAG = re.compile(r"^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$")  # mkv "DURATION" tag, "00:00:03.020000000"


@dataclass(frozen=True)
class Declared:
    """What a container's header says about its (first) video stream; ``None`` where it says nothing.

    Attributes:
        frames: frame count stored in the container (mp4/mov sample tables, avi headers).
        duration: seconds of video the container declares (mkv/webm ``DURATION`` tag, or the file's
            duration when the video is its only stream). Used only when ``frames`` is unknown.
    """

    frames: int | None = None
    duration: float | None = None


@dataclass(frozen=True)
class Timing:
    """The frames present in a file.

    Attributes:
        num_frames: frames present.
        fps: average frame rate (frames per second); 0 when unknown.
        duration: seconds from the first frame's start to the last frame's end (``nan`` when unknown).
        end: presentation time in seconds at which the last frame ends (``None`` when unknown).
    """

    num_frames: int
    fps: float
    duration: float
    end: float | None = None


def _parse_duration_tag(text: str | None) -> float | None:
    match = _DURATION_TAG.match(text.strip()) if text else None
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def declared_from_pyav(container, stream) -> Declared:
    """:class:`Declared` from an open PyAV input container and its video stream (reads no packets)."""
    frames = int(stream.frames or 0) or None
    duration = _parse_duration_tag(stream.metadata.get("DURATION"))
    if duration is None and len(container.streams) == 1 and container.duration:
        duration = container.duration / 1_000_000  # microseconds; other streams could outlast the video
    return Declared(frames=frames, duration=duration if duration and duration > 0 else None)


def probe_declared(path: str | Path) -> Declared:
    """Open ``path`` with PyAV just to read what its header declares (raises what PyAV raises).

    Opening costs a few milliseconds (FFmpeg probes the first packets), so answers are cached per
    process, keyed by path, size and modification time (a rewritten file is probed again); later
    epochs then cost nothing.
    """
    stat = os.stat(path)
    return _probe_declared(os.fspath(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=1 << 16)
def _probe_declared(path: str, size: int, mtime_ns: int) -> Declared:
    import av

    with av.open(path) as container:
        streams = container.streams.video
        if not streams:
            raise ValueError("the file has no video stream")
        return declared_from_pyav(container, streams[0])


def timing_from_starts(
    num_frames: int,
    starts: np.ndarray | None,
    last_duration: float | None,
    nominal_fps: float,
) -> Timing:
    """:class:`Timing` from the presentation start times (seconds) of the frames present.

    Args:
        num_frames: frames present.
        starts: start time of every frame (any order), or ``None`` when the file has no usable
            timestamps (then the nominal rate is used).
        last_duration: stored duration of the last frame in seconds; ``None`` or 0 when not stored
            (the average frame interval is used instead).
        nominal_fps: the frame rate the container states (0 when it states none).
    """
    nominal = float(nominal_fps) if nominal_fps and math.isfinite(nominal_fps) and nominal_fps > 0 else 0.0
    if starts is not None and num_frames > 1 and len(starts) == num_frames and np.all(np.isfinite(starts)):
        first, last = float(np.min(starts)), float(np.max(starts))
        span = last - first
        if span > 0:
            tail = last_duration if last_duration and last_duration > 0 else span / (num_frames - 1)
            duration = span + tail
            fps = num_frames / duration
            if nominal and abs(fps - nominal) <= CFR_TOLERANCE * nominal:  # constant rate: keep it exact
                fps, duration = nominal, num_frames / nominal
            return Timing(num_frames, fps, duration, end=first + duration)
    if nominal:
        first = float(np.min(starts)) if starts is not None and len(starts) and np.all(np.isfinite(starts)) else None
        end = None if first is None else first + num_frames / nominal
        return Timing(num_frames, nominal, num_frames / nominal, end=end)
    return Timing(num_frames, 0.0, float("nan"))


def truncation_cause(timing: Timing, declared: Declared) -> str | None:
    """Why the frames present do not cover what the header declares, or ``None`` if they do.

    A declared frame count must be reached exactly. A declared duration (used only without a count)
    must be covered to within :data:`MISSING_FRAMES_TOLERATED` frame periods; a file without usable
    timestamps or frame rate is not checked against a duration.
    """
    if declared.frames is not None:
        if timing.num_frames < declared.frames:
            return (
                f"truncated or damaged: the container declares {declared.frames} frames but only "
                f"{timing.num_frames} are present"
            )
        return None
    if declared.duration is None or timing.end is None or not timing.fps > 0:
        return None
    if timing.end < declared.duration - MISSING_FRAMES_TOLERATED / timing.fps:
        return (
            f"truncated: the container declares {declared.duration:.3f} s of video but its "
            f"{timing.num_frames} frames end at {timing.end:.3f} s"
        )
    return None
