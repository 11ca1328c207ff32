"""``vitzoo data prepare``: a smaller copy of a dataset that trains faster, in the same layout.

Every video file under the dataset root is re-encoded so that its short side is ``short_side`` pixels (never
enlarged), optionally at a fixed frame rate, into the same relative path under the output folder, keeping its file
name and container (so the annotation files keep working; they, and every other file, are copied unchanged). H.264
goes into mp4 / mkv / mov, VP9 into webm, MPEG-4 Part 2 (xvid) into avi. Or, with ``rawframes``, each
video becomes a folder of JPEG frames ``<path without suffix>/img_00001.jpg ...``.

Decoding a 1080p Kinetics file for a 224-pixel crop spends most of the loader's time on pixels the crop throws
away; a 256-pixel copy decodes several times faster (docs/data.md has the measurement).

Resumable: an output that exists is finished (every file is written to a temporary name and renamed when complete),
so a second run skips it. Videos that cannot be decoded are listed in the report and not written.
"""

from __future__ import annotations

import logging
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from vitzoo.data.datasets import VIDEO_EXTENSIONS
from vitzoo.data.errors import DataConfigError
from vitzoo.data.frames import FRAME_NAME
from vitzoo.durable import fsync_directory, make_directory, temporary_path
from vitzoo.errors import InputNotFoundError
from vitzoo.progress import progress_bar

logger = logging.getLogger(__name__)

# container suffix -> encoder; everything else gets libx264. avi keeps MPEG-4 Part 2 (xvid, as UCF101 and HMDB51
# ship): avi stores no presentation order, and decord returns H.264-in-avi frames out of order.
_CODECS = {".webm": "libvpx-vp9", ".avi": "mpeg4"}
_QUALITY = {
    "libx264": lambda crf: {"crf": str(crf), "preset": "veryfast"},
    "libvpx-vp9": lambda crf: {"crf": str(crf), "b": "0", "deadline": "realtime", "cpu-used": "8"},
    "mpeg4": lambda crf: {"qscale": str(max(2, min(31, crf // 6)))},
}


@dataclass(frozen=True)
class PrepareOptions:
    """How to prepare each video.

    Attributes:
        short_side: target length of the shorter side in pixels (videos already smaller are not enlarged).
        fps: a fixed output frame rate (frames are dropped or repeated by timestamp); ``None`` keeps the timing.
        rawframes: write JPEG frame folders instead of videos.
        crf: H.264 / VP9 quality (lower: better, bigger); xvid gets ``qscale = crf // 6``.
        jpeg_quality: rawframes' JPEG quality.
    """

    short_side: int = 256
    fps: float | None = None
    rawframes: bool = False
    crf: int = 23
    jpeg_quality: int = 90


@dataclass
class PrepareReport:
    """What :func:`prepare_dataset` did."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already prepared (a previous run)
    failed: dict[str, str] = field(default_factory=dict)  # relative path -> why
    copied: int = 0  # other files (annotations, lists)
    frames: dict[str, int] = field(default_factory=dict)  # rawframes: relative frame folder -> frames written

    def summary(self) -> str:
        """One line of counts."""
        return (
            f"{len(self.written)} videos prepared, {len(self.skipped)} already done, {len(self.failed)} failed, "
            f"{self.copied} other files copied"
        )


def output_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """``(height, width)`` with the short side ``short_side`` (not enlarged), both even (yuv420p needs it)."""
    scale = min(1.0, short_side / min(height, width))
    return max(2, round(height * scale / 2) * 2), max(2, round(width * scale / 2) * 2)


def _frames(container, stream, fps: float | None, source_fps: float):
    """Decoded frames; with ``fps``, output slot ``k`` (at ``k / fps`` s) shows the last frame starting at or before
    it, so frames are dropped (lower rate) or repeated (higher rate)."""
    if fps is None:
        yield from container.decode(stream)
        return
    first, last, last_t, k = None, None, 0.0, 0
    for frame in container.decode(stream):
        t = float(frame.time) if frame.time is not None else last_t + 1.0 / source_fps
        first = t if first is None else first
        while last is not None and k / fps < t - first:
            yield last
            k += 1
        last, last_t = frame, t
    if last is not None:
        end = last_t - first + 1.0 / source_fps  # the last frame shows until here
        while k == 0 or k / fps < end - 1e-9:
            yield last
            k += 1


def prepare_video(source: Path, target: Path, options: PrepareOptions) -> int:
    """Re-encode ``source`` to ``target`` (or extract its frames into the folder ``target``); returns the frames
    written. Written under a temporary name and renamed when complete."""
    import av

    target.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        source_fps = float(stream.average_rate or stream.guessed_rate or 25)
        rate = options.fps or source_fps
        if options.rawframes:
            return _extract(container, stream, target, options, source_fps)
        height, width = output_size(stream.codec_context.height, stream.codec_context.width, options.short_side)
        tmp = temporary_path(target)
        count = 0
        fmt = {".mkv": "matroska", ".webm": "webm", ".avi": "avi", ".mov": "mov", ".m4v": "mp4"}.get(
            target.suffix.lower(), "mp4"
        )
        try:
            with av.open(str(tmp), mode="w", format=fmt) as out:
                codec = _CODECS.get(target.suffix.lower(), "libx264")
                out_rate = Fraction(rate).limit_denominator(1001)
                ostream = out.add_stream(codec, rate=out_rate)
                ostream.width, ostream.height, ostream.pix_fmt = width, height, "yuv420p"
                ostream.options = _QUALITY[codec](options.crf)
                if codec == "mpeg4":
                    ostream.codec_context.codec_tag = "XVID"
                for frame in _frames(container, stream, options.fps, source_fps):
                    small = frame.reformat(width=width, height=height, format="yuv420p")
                    small.pts = count
                    small.time_base = 1 / out_rate
                    out.mux(ostream.encode(small))
                    count += 1
                out.mux(ostream.encode())
            if count == 0:
                raise ValueError("no frame decoded")
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, target)
            fsync_directory(target.parent)
        finally:
            tmp.unlink(missing_ok=True)
        return count


def _extract(container, stream, target: Path, options: PrepareOptions, source_fps: float) -> int:
    """Frames as ``target/img_00001.jpg ...`` (a temporary folder renamed when complete)."""
    from PIL import Image

    tmp = temporary_path(target)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    count = 0
    try:
        for frame in _frames(container, stream, options.fps, source_fps):
            height, width = output_size(frame.height, frame.width, options.short_side)
            image: Image.Image = frame.reformat(width=width, height=height, format="rgb24").to_image()
            image.save(tmp / FRAME_NAME.format(count + 1), quality=options.jpeg_quality)
            count += 1
        if count == 0:
            raise ValueError("no frame decoded")
        os.replace(tmp, target)
        fsync_directory(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return count


def _target(rel: Path, out: Path, options: PrepareOptions) -> Path:
    return out / (rel.with_suffix("") if options.rawframes else rel)


def _prepare_one(job: tuple[Path, Path, PrepareOptions]) -> tuple[int, str | None]:
    source, target, options = job
    try:
        return prepare_video(source, target, options), None
    except Exception as exc:  # noqa: BLE001  (any decoder or encoder failure: reported per file, never fatal)
        return 0, " ".join(str(exc).split()) or type(exc).__name__


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(target)
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def prepare_dataset(
    root: str | os.PathLike, out: str | os.PathLike, options: PrepareOptions, *, workers: int = 0, progress: bool = True
) -> PrepareReport:
    """Prepare every video under ``root`` into ``out`` (same relative paths) and copy every other file; skips what
    a previous run finished. ``workers`` processes (0: this one)."""
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise InputNotFoundError(f"dataset root {root} is not a directory")
    if out.resolve() == root.resolve() or root.resolve() in out.resolve().parents:
        raise DataConfigError(f"the output folder {out} must be outside the dataset root {root}")
    make_directory(out)
    report = PrepareReport()
    jobs = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        rel = path.relative_to(root)
        if path.suffix.lower() not in VIDEO_EXTENSIONS:
            if not (out / rel).exists():
                _copy(path, out / rel)
                report.copied += 1
            continue
        target = _target(rel, out, options)
        if target.exists():
            report.skipped.append(rel.as_posix())
        else:
            jobs.append((path, target, options))
    bar = progress_bar(total=len(jobs), desc="preparing", unit="video", enabled=progress)
    results = []
    if workers > 0:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(_prepare_one, jobs, chunksize=1):
                results.append(result)
                bar.update(1)
    else:
        for job in jobs:
            results.append(_prepare_one(job))
            bar.update(1)
    bar.close()
    for (source, target, _), (count, error) in zip(jobs, results, strict=True):
        rel = source.relative_to(root).as_posix()
        if error is not None:
            report.failed[rel] = error
            continue
        report.written.append(rel)
        if options.rawframes:
            report.frames[target.relative_to(out).as_posix()] = count
    return report
