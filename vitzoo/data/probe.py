"""What a video file holds and what its header declares, read from its packets (no decoding).

Both decoder backends describe a file the same way (:class:`Probe`), from one pass over the video
packets with PyAV:

* the frames **shown**: every video packet except those an mp4 edit list marks as discarded (cut
  from the start or end of the track; players never show them). Their presentation times give the
  duration and the average frame rate (:func:`timing_from_starts`).
* what the header **declares** (:class:`Declared`): a frame count (mp4, mov, avi) or a duration of
  the video stream (the ``DURATION`` tag FFmpeg and mkvmerge write into mkv and webm files).

A file whose frames fall short of what its header declares is truncated (:func:`truncation_cause`);
:class:`vitzoo.data.VideoReader` refuses it when it is opened.

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
        duration: seconds of video the container declares for the stream (the mkv/webm ``DURATION``
            tag that FFmpeg and mkvmerge write). Used only when ``frames`` is unknown.
    """

    frames: int | None = None
    duration: float | None = None


@dataclass(frozen=True)
class Timing:
    """The frames shown from a file.

    Attributes:
        num_frames: frames shown.
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


def declared_from_pyav(stream) -> Declared:
    """:class:`Declared` from the video stream of an open PyAV input container (reads no packets)."""
    frames = int(stream.frames or 0) or None
    # Only the stream's own tag: the file's duration may cover longer audio, or be FFmpeg's estimate.
    duration = _parse_duration_tag(stream.metadata.get("DURATION"))
    return Declared(frames=frames, duration=duration if duration and duration > 0 else None)


@dataclass(frozen=True)
class Probe:
    """One pass over a file's video packets.

    Attributes:
        timing: the frames shown (discarded packets excluded).
        declared: the header's numbers, its frame count less the discarded packets.
        discarded: video packets an edit list marks as never shown.
        discarded_early: those of them that are not after the last frame shown (cut from the start).
    """

    timing: Timing
    declared: Declared
    discarded: int = 0
    discarded_early: int = 0


def probe_container(container, stream) -> Probe:
    """:class:`Probe` of an open PyAV input container's video ``stream``; demuxes every packet, then seeks to 0."""
    declared = declared_from_pyav(stream)
    pts, durations, discarded_pts = [], [], []
    for packet in container.demux(stream):
        if not packet.size:
            continue
        if packet.is_discard:  # outside an mp4 edit list: never shown, yet counted in the header
            discarded_pts.append(packet.pts)
            continue
        pts.append(packet.pts)
        durations.append(packet.duration or 0)
    container.seek(0)
    discarded = len(discarded_pts)
    last_shown = max((p for p in pts if p is not None), default=None)
    early = sum(1 for p in discarded_pts if p is None or last_shown is None or p < last_shown)
    if discarded and declared.frames is not None:
        declared = Declared(frames=declared.frames - discarded, duration=declared.duration)
    base = float(stream.time_base or 0)
    starts, last = None, None
    if pts and base > 0 and None not in pts:
        starts = np.asarray(pts, dtype=np.float64) * base
        last = durations[int(np.argmax(starts))] * base
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    timing = timing_from_starts(len(pts), starts, last, float(rate) if rate else 0.0)
    return Probe(timing=timing, declared=declared, discarded=discarded, discarded_early=early)


def probe_file(path: str | Path) -> Probe:
    """:func:`probe_container` of the file at ``path`` (raises what PyAV raises).

    Opening and demuxing cost a few milliseconds, so answers are cached per process, keyed by path,
    size and modification time (a rewritten file is probed again); later epochs then cost nothing.
    """
    stat = os.stat(path)
    return _probe_file(os.fspath(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=1 << 16)
def _probe_file(path: str, size: int, mtime_ns: int) -> Probe:
    import av

    with av.open(path) as container:
        streams = container.streams.video
        if not streams:
            raise ValueError("the file has no video stream")
        return probe_container(container, streams[0])


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
