"""``vitzoo data check``: open every listed video of a dataset, once, and say what is usable.

For each video of a split (:func:`check_split`): is it there (the layout's ``missing``), does its container open and
say what it holds (frame count, frame rate, duration, size: PyAV metadata, :class:`~vitzoo.data.VideoReader` with the
``pyav`` backend), and do the frames an evaluation clip would use really decode (a decode of the sampler's frames).
Frame folders (``rawframes``) are checked by decoding the clip's JPEG files. The videos are checked in parallel
processes with a progress bar.

A video is *usable* when it decodes; *too short* ones (fewer frames than the clip spans: the sampler repeats frames)
are usable and listed. :func:`write_lists` writes the usable videos as ``list``-layout files (``train.txt``,
``val.txt``, ``classes.txt``; frame folders as ``rawframes`` lists), so a slow check runs once.
"""

from __future__ import annotations

import json
import logging
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vitzoo.data.errors import VideoDecodeError
from vitzoo.data.frames import FRAME_NAME, read_jpeg_frames
from vitzoo.data.layouts import LayoutSplit
from vitzoo.data.sampling import DenseSampler, FrameSampler
from vitzoo.data.video import VideoReader
from vitzoo.durable import write_text_atomic
from vitzoo.progress import progress_bar

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoFacts:
    """What checking one video found; ``error`` is ``None`` when it decodes."""

    num_frames: int = 0
    fps: float = 0.0
    duration: float = 0.0
    height: int = 0
    width: int = 0
    error: str | None = None


def clip_span(sampler: FrameSampler) -> int:
    """Frames of video one clip of ``sampler`` spans (at the video's own rate)."""
    if isinstance(sampler, DenseSampler):
        return int(math.ceil((sampler.num_frames - 1) * sampler.frame_interval)) + 1
    return int(sampler.num_frames)


def check_video(path: str, sampler: FrameSampler, num_frames: int | None = None, backend: str = "decord") -> VideoFacts:
    """Open ``path`` (a video, or a frame folder with ``num_frames`` frames) and decode the frames of one
    evaluation clip with ``backend`` (the one training uses; opening probes the packets with PyAV either way);
    the error is caught and returned, never raised."""
    rng = np.random.default_rng(0)
    try:
        if num_frames is not None:  # a frame folder
            folder = Path(path)
            if not (folder / FRAME_NAME.format(num_frames)).is_file():
                return VideoFacts(
                    error=f"the list says {num_frames} frames but {FRAME_NAME.format(num_frames)} is missing"
                )
            frames = read_jpeg_frames(folder, sampler(num_frames, rng)[0])
            return VideoFacts(num_frames, 0.0, 0.0, int(frames.shape[-2]), int(frames.shape[-1]))
        with VideoReader(path, backend=backend) as reader:
            indices = sampler(reader.num_frames, rng, fps=reader.fps)[0]
            reader.get(indices)
            height, width = reader.frame_shape
            return VideoFacts(reader.num_frames, float(reader.fps), float(reader.duration), height, width)
    except (VideoDecodeError, ValueError, OSError, RuntimeError) as exc:
        return VideoFacts(error=" ".join(str(exc).split()) or type(exc).__name__)


def _check_one(job: tuple[str, FrameSampler, int | None, str]) -> VideoFacts:
    return check_video(*job)


@dataclass
class SplitReport:
    """The check of one split (``as_dict`` is its JSON form in ``--report``)."""

    classes: list[str] | None
    listed: int
    usable: list[tuple[Path, int]] = field(default_factory=list)
    usable_frames: list[int] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    undecodable: dict[str, str] = field(default_factory=dict)  # relative path -> why
    too_short: list[str] = field(default_factory=list)
    facts: list[VideoFacts] = field(default_factory=list)  # of the usable videos

    def spread(self, name: str) -> dict[str, float] | None:
        """``{"min", "median", "max"}`` of a :class:`VideoFacts` field over the usable videos."""
        values = [getattr(f, name) for f in self.facts if getattr(f, name)]
        if not values:
            return None
        return {"min": float(min(values)), "median": float(np.median(values)), "max": float(max(values))}

    def as_dict(self) -> dict:
        """The JSON form: counts, the lists, the spreads."""
        return {
            "num_listed": self.listed,
            "num_usable": len(self.usable),
            "num_missing": len(self.missing),
            "num_undecodable": len(self.undecodable),
            "num_too_short": len(self.too_short),
            "classes": self.classes,
            "missing": self.missing,
            "undecodable": sorted(self.undecodable),
            "errors": self.undecodable,
            "too_short": self.too_short,
            "height": self.spread("height"),
            "width": self.spread("width"),
            "fps": self.spread("fps"),
            "duration": self.spread("duration"),
        }

    def summary(self, name: str) -> str:
        """One line: counts and spreads."""
        parts = [
            f"{name}: {self.listed} listed, {len(self.usable)} usable, {len(self.missing)} missing, "
            f"{len(self.undecodable)} undecodable, {len(self.too_short)} shorter than a clip"
        ]
        for key, unit in (("height", "px high"), ("fps", "fps"), ("duration", "s")):
            s = self.spread(key)
            if s:
                parts.append(f"{s['min']:g}-{s['max']:g} {unit} (median {s['median']:g})")
        return "; ".join(parts)


def check_split(
    found: LayoutSplit,
    root: Path,
    sampler: FrameSampler,
    *,
    backend: str = "decord",
    workers: int = 0,
    progress: bool = True,
    desc: str = "",
) -> SplitReport:
    """Check every video of ``found`` (one split of a layout) with ``workers`` processes (0: in this process)."""
    counts = found.num_frames
    jobs = [
        (str(p), sampler, counts[i] if counts is not None else None, backend) for i, (p, _) in enumerate(found.samples)
    ]
    report = SplitReport(found.classes, len(found.samples) + len(found.missing), missing=list(found.missing))
    bar = dict(total=len(jobs), desc=desc or "checking", unit="video", enabled=progress)
    if workers > 0:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(progress_bar(pool.map(_check_one, jobs, chunksize=4), **bar))
    else:
        results = list(progress_bar(map(_check_one, jobs), **bar))
    span = clip_span(sampler)
    for (path, label), facts, job in zip(found.samples, results, jobs, strict=True):
        rel = os.path.relpath(path, root)
        if facts.error is not None:
            report.undecodable[rel] = facts.error
            continue
        report.usable.append((path, label))
        if job[2] is not None:
            report.usable_frames.append(job[2])
        report.facts.append(facts)
        if facts.num_frames < span:
            report.too_short.append(rel)
    return report


def write_report(reports: dict[str, SplitReport], path: str | os.PathLike) -> Path:
    """``{split: SplitReport.as_dict()}`` as JSON, written atomically."""
    return write_text_atomic(path, json.dumps({k: r.as_dict() for k, r in reports.items()}, indent=2) + "\n")


def write_lists(reports: dict[str, SplitReport], root: Path, folder: str | os.PathLike) -> list[Path]:
    """Write ``<split>.txt`` (``train.txt``, ``val.txt``) of the usable videos, paths relative to ``root``, and
    ``classes.txt`` when the classes have names: the ``list`` layout (frame folders: ``rawframes`` lists)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for split, report in reports.items():
        lines = []
        for i, (path, label) in enumerate(report.usable):
            rel = Path(os.path.relpath(path, root)).as_posix()
            frames = f" {report.usable_frames[i]}" if report.usable_frames else ""
            lines.append(f"{rel}{frames} {label}\n")
        written.append(write_text_atomic(folder / f"{split}.txt", "".join(lines)))
    classes = next((r.classes for r in reports.values() if r.classes is not None), None)
    if classes is not None:
        written.append(write_text_atomic(folder / "classes.txt", "".join(f"{c}\n" for c in classes)))
    return written


def cannot_train(reports: dict[str, SplitReport]) -> str | None:
    """Why the data cannot train (a split without a usable video), or ``None``."""
    for split, report in reports.items():
        if not report.usable:
            return (
                f"no usable video in split {split!r} ({report.listed} listed, {len(report.missing)} missing, "
                f"{len(report.undecodable)} undecodable)"
            )
    return None
