"""Real video files from arrays: a writer, frame-index test videos and a synthetic motion dataset.

* :func:`write_video` encodes ``(T, H, W, 3)`` uint8 frames (yuv420p) through PyAV: H.264 in mp4 (and
  mkv, avi, mov), VP9 in webm; optionally with variable frame timestamps or a display rotation.
* :func:`make_test_video` writes frames that encode their own index in large flat gray areas, and
  :func:`read_frame_index` reads it back from a decoded frame, so tests can check that decoded frame
  ``i`` really is frame ``i`` despite compression and resizing.
* :func:`make_motion_dataset` writes a small labelled dataset whose label (the direction a shape
  moves) is invisible in any single frame: objects move on a torus (wrapping at the borders) from
  uniformly random starts, so their positions in every frame are uniform whatever the class. With
  distractors (other shapes moving other ways) the label also depends on recognising the shape.
* :func:`write_clip_dataset` writes any clip generator's clips as mp4 files with label lists.

PyAV is imported lazily (it is a ``dev`` extra, not needed to train on existing files).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vitzoo.data.shapes import SHAPES, shape_mask

logger = logging.getLogger(__name__)

MOTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}  # (dx, dy)

# Frame-index code: left half shows i % 12, right half i // 12, as gray level 16 + 20 * digit.
_CODE_BASE, _CODE_LEVEL0, _CODE_STEP = 12, 16, 20
MAX_TEST_FRAMES = _CODE_BASE * _CODE_BASE


_CODECS = {".webm": "libvpx-vp9"}  # container suffix -> encoder; everything else gets libx264 (H.264)


def write_video(
    path: str | Path,
    frames: np.ndarray | torch.Tensor,
    fps: float,
    *,
    crf: int = 18,
    preset: str = "veryfast",
    timestamps: Sequence[float] | None = None,
    rotation: int = 0,
    faststart: bool = False,
) -> Path:
    """Encode frames to a yuv420p video with PyAV; the bytes are a function of the inputs.

    The container follows the suffix of ``path`` (``.mp4``, ``.mkv``, ``.avi``, ``.mov``, ``.webm``); the
    codec is H.264 (libx264), or VP9 for ``.webm``.

    Args:
        path: output file (parent directories are created).
        frames: uint8 ``(T, H, W, 3)`` RGB, ``T >= 1``; ``H`` and ``W`` must be even (4:2:0 chroma).
        fps: frame rate (may be fractional, e.g. 29.97); the nominal rate when ``timestamps`` is given.
        crf: constant rate factor (lower = better quality; 18 is visually lossless for x264).
        preset: x264 speed preset.
        timestamps: presentation time in seconds of each frame, strictly increasing (a
            variable-frame-rate file; stored in milliseconds). Default: frame ``i`` at ``i / fps``.
        rotation: display rotation in degrees counter-clockwise (a multiple of 90; mp4/mov store it,
            as phones do): players show the frames turned by this angle.
        faststart: mp4/mov only: put the index (moov) before the frame data.

    Returns:
        the path written.
    """
    import av

    array = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {array.dtype} {array.shape}")
    num_frames, height, width, _ = array.shape
    if num_frames < 1:
        raise ValueError("cannot write a video with zero frames")
    if height % 2 or width % 2:
        raise ValueError(f"yuv420p needs even height and width, got {height}x{width}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if rotation % 90:
        raise ValueError(f"rotation must be a multiple of 90 degrees, got {rotation}")
    pts = None
    if timestamps is not None:
        pts = np.rint(np.asarray(timestamps, dtype=np.float64) * 1000).astype(np.int64)  # milliseconds
        if pts.shape != (num_frames,) or np.any(np.diff(pts) <= 0):
            raise ValueError(f"timestamps must be {num_frames} strictly increasing times (1 ms apart at least)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = _CODECS.get(path.suffix.lower(), "libx264")
    options = {"movflags": "+faststart"} if faststart else {}
    if path.suffix.lower() in (".mkv", ".webm"):
        options["fflags"] = "+bitexact"  # no random segment UID or date: the same bytes on every run
    with av.open(str(path), mode="w", options=options) as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            # libx264's lookahead (frame-type / macroblock-tree decisions) made the bytes differ between
            # identical runs now and then; without it the output is reproducible (B-frames are kept).
            stream.options = {"crf": str(crf), "preset": preset, "x264-params": "rc-lookahead=0:mbtree=0"}
        else:
            stream.options = {"crf": str(crf), "b": "0", "deadline": "realtime", "cpu-used": "8"}
        stream.codec_context.thread_count = 1  # tiny frames: threads cost more than they save
        if pts is not None:
            stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        for i, frame in enumerate(array):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            if pts is not None:
                video_frame.pts, video_frame.time_base = int(pts[i]), Fraction(1, 1000)
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())  # flush
    return path


def index_coded_frames(num_frames: int, height: int, width: int) -> np.ndarray:
    """Frames ``(T, H, W, 3)`` uint8 whose gray levels encode the frame index (:func:`read_frame_index`)."""
    if not 1 <= num_frames <= MAX_TEST_FRAMES:
        raise ValueError(f"num_frames must be in [1, {MAX_TEST_FRAMES}], got {num_frames}")
    index = np.arange(num_frames)
    left = _CODE_LEVEL0 + _CODE_STEP * (index % _CODE_BASE)
    right = _CODE_LEVEL0 + _CODE_STEP * (index // _CODE_BASE)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    frames[:, :, : width // 2] = left[:, None, None, None]
    frames[:, :, width // 2 :] = right[:, None, None, None]
    return frames


def make_test_video(path: str | Path, num_frames: int, height: int, width: int, fps: float) -> Path:
    """Write an mp4 whose frame ``i`` shows its index ``i`` as two flat gray halves.

    Read the index back with :func:`read_frame_index`. Up to 144 frames; even ``height``/``width``.
    """
    return write_video(path, index_coded_frames(num_frames, height, width), fps)


def read_frame_index(frame: np.ndarray | torch.Tensor, *, layout: str = "HWC") -> int:
    """Recover the index drawn by :func:`make_test_video` from one decoded (possibly resized) frame.

    Averages the middle of each half, so it tolerates compression noise and resizing.

    Args:
        frame: uint8 frame, ``(H, W, 3)`` (``layout="HWC"``) or ``(3, H, W)`` (``layout="CHW"``).
    """
    image = frame.numpy() if isinstance(frame, torch.Tensor) else np.asarray(frame)
    if layout == "CHW":
        image = image.transpose(1, 2, 0)
    elif layout != "HWC":
        raise ValueError(f"layout={layout!r}; expected 'HWC' or 'CHW'")
    height, width = image.shape[:2]
    rows = slice(height // 4, max(height // 4 + 1, 3 * height // 4))
    left = image[rows, width // 8 : max(width // 8 + 1, 3 * width // 8)].astype(np.float64).mean()
    right = image[rows, 5 * width // 8 : max(5 * width // 8 + 1, 7 * width // 8)].astype(np.float64).mean()
    digit = lambda level: int(np.clip(round((level - _CODE_LEVEL0) / _CODE_STEP), 0, _CODE_BASE - 1))
    return digit(left) + _CODE_BASE * digit(right)


def motion_clip(
    direction: str,
    rng: np.random.Generator,
    *,
    num_frames: int = 16,
    size: int = 64,
    shape: str = "disk",
    distractors: int = 0,
    speed: tuple[float, float] = (1.5, 3.0),
    radius: tuple[float, float] = (5.0, 8.0),
    noise: float = 12.0,
) -> np.ndarray:
    """One clip ``(T, size, size, 3)`` uint8: a bright ``shape`` moving in ``direction`` over noise.

    With ``distractors > 0``, that many objects of the other shapes move too, each in a different one of
    the remaining directions, so only an object's shape says which motion is the label. Start positions,
    speeds, radii, colours and the background level are random (the same distributions for every object);
    objects wrap around the borders (a torus), so each single frame is independent of the direction.
    The labelled object is drawn last (on top).
    """
    others = [d for d in MOTIONS if d != direction]
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")
    if not 0 <= distractors <= len(others):
        raise ValueError(f"distractors must be in [0, {len(others)}] (one direction each), got {distractors}")
    other_shapes = [s for s in SHAPES if s != shape]
    background = rng.uniform(20, 90)
    frames = background + noise * rng.standard_normal((num_frames, size, size, 1))  # (T, H, W, 1)
    moves = [direction] + [others[i] for i in rng.permutation(len(others))[:distractors]]
    kinds = [shape] + [other_shapes[i] for i in rng.integers(len(other_shapes), size=distractors)]
    t = np.arange(num_frames, dtype=np.float64)[:, None, None]  # (T, 1, 1)
    coords = np.arange(size, dtype=np.float64)
    for kind, move in reversed(list(zip(kinds, moves, strict=True))):
        dx, dy = MOTIONS[move]
        step, r = rng.uniform(*speed), rng.uniform(*radius)
        x0, y0 = rng.uniform(0, size, size=2)
        color = rng.uniform(170, 255, size=3)
        cx, cy = x0 + dx * step * t, y0 + dy * step * t  # (T, 1, 1)
        ddx = (coords[None, None, :] - cx + size / 2) % size - size / 2  # torus offset, (T, 1, W)
        ddy = (coords[None, :, None] - cy + size / 2) % size - size / 2  # (T, H, 1)
        frames = np.where(shape_mask(kind, ddy, ddx, r)[..., None], color, frames)  # (T, H, W, 3)
    frames = np.broadcast_to(frames, (num_frames, size, size, 3))
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


@dataclass
class MotionDataset:
    """Where :func:`write_clip_dataset` (and the dataset makers built on it) wrote things."""

    root: Path
    train_list: Path
    val_list: Path
    classes_file: Path
    classes: list[str]


def write_clip_dataset(
    root: str | Path,
    *,
    classes: list[str],
    make_clip: Callable[[int, np.random.Generator], np.ndarray],
    num_train: int,
    num_val: int,
    fps: float = 25.0,
    seed: int = 0,
    progress: bool = True,
) -> MotionDataset:
    """Write a classification dataset of real mp4 files, clip ``i`` of a split drawn by ``make_clip(label, rng)``.

    Layout: ``root/train/000000.mp4 ...``, ``root/val/...``, ``root/train.txt`` and ``root/val.txt``
    (``relative/path.mp4 label`` lines) and ``root/classes.txt``. Labels are balanced (each split
    cycles through the classes, then is shuffled); each clip gets its own generator seeded by
    ``(seed, split, index)``, so the content is a function of ``seed`` only.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    classes_file = root / "classes.txt"
    classes_file.write_text("".join(f"{c}\n" for c in classes))
    lists = {}
    with tqdm(total=num_train + num_val, desc="writing videos", unit="video", disable=not progress) as bar:
        for split_id, (split, count) in enumerate((("train", num_train), ("val", num_val))):
            split_rng = np.random.default_rng([seed, split_id])
            labels = split_rng.permutation(np.arange(count) % len(classes))
            lines = []
            for i, label in enumerate(labels.tolist()):
                relative = f"{split}/{i:06d}.mp4"
                write_video(root / relative, make_clip(label, np.random.default_rng([seed, split_id, i])), fps)
                lines.append(f"{relative} {label}\n")
                bar.update()
            lists[split] = root / f"{split}.txt"
            lists[split].write_text("".join(lines))
    logger.info("wrote %d train + %d val videos to %s", num_train, num_val, root)
    return MotionDataset(root, lists["train"], lists["val"], classes_file, list(classes))


def make_motion_dataset(
    root: str | Path,
    *,
    num_train: int,
    num_val: int,
    num_frames: int = 16,
    size: int = 64,
    fps: float = 25.0,
    seed: int = 0,
    classes: tuple[str, ...] = ("left", "right", "up", "down"),
    shape: str = "disk",
    distractors: int = 0,
    progress: bool = True,
) -> MotionDataset:
    """Write a motion-direction dataset of real mp4 files (clips from :func:`motion_clip`).

    Layout and determinism as :func:`write_clip_dataset`.

    Args:
        root: output directory (created).
        num_train, num_val: number of videos per split.
        num_frames, size, fps: clip length, square frame side (even), frame rate.
        seed: makes the dataset reproducible.
        classes: motion directions to use, a subset of ``left, right, up, down``.
        shape: the labelled object's shape (``square, disk, triangle, cross``).
        distractors: objects of other shapes moving in other directions (0 to 3).
        progress: show a tqdm progress bar.
    """
    unknown = [c for c in classes if c not in MOTIONS]
    if unknown or len(set(classes)) != len(classes) or len(classes) < 2:
        raise ValueError(f"classes must be >= 2 distinct names from {sorted(MOTIONS)}, got {classes}")

    def make_clip(label: int, rng: np.random.Generator) -> np.ndarray:
        return motion_clip(classes[label], rng, num_frames=num_frames, size=size, shape=shape, distractors=distractors)

    return write_clip_dataset(
        root, classes=list(classes), make_clip=make_clip, num_train=num_train, num_val=num_val, fps=fps, seed=seed,
        progress=progress,
    )  # fmt: skip
