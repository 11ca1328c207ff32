"""``VideoReader``: one video file, lazily opened, fork-aware, with a uniform error type.

What the reader guarantees, with either backend (decord or PyAV) and any container:

* **No silent short reads.** ``num_frames`` counts the frames actually shown from the file (its video
  packets, less those an mp4 edit list hides; not a number copied from the header), and ``get``
  returns exactly the frames asked for or raises :class:`VideoDecodeError`. On top of that, a
  **truncated** file is refused when it is opened: if the container declares a frame count (mp4,
  mov, avi) and fewer frames are present, or declares a video duration (mkv, webm) and the frames
  present end more than two frame periods before it, opening raises
  ``VideoDecodeError("... truncated ...")`` naming the file and both numbers. (A file that declares
  neither cannot be checked; it is read as what it contains.) So samplers always sample within
  frames that exist, and a damaged file is reported, not shortened. Both backends take these
  numbers from one pass over the packets with PyAV (no decoding; :mod:`vitzoo.data.probe`), so they
  agree. decord cannot read mp4s trimmed at the start without re-encoding (an edit list hiding the
  first frames: its frame indices shift), so the decord backend refuses them and names
  ``backend="pyav"``.
* **Durations and frame rates from timestamps.** ``duration`` is the time from the first frame's start
  to the last frame's end and ``fps`` is the average rate ``num_frames / duration``, so
  variable-frame-rate files report their real length (see :mod:`vitzoo.data.probe`); constant-rate
  files keep their nominal rate exactly.
* **Rotation applied like a player.** A rotation stored in the file (mp4 display matrix, e.g. phone
  videos) is applied by both backends, so frames are upright and the same pixels come from either
  backend; ``frame_shape``, ``width``/``height`` and ``short_side`` refer to the turned frames. Only
  the matrix's rotation angle (rounded to quarter turns) is used; a mirror flag is ignored by both.

Why lazy and fork-aware: a decord reader that crosses a ``fork`` (for example one opened in the
main process and then used, or merely garbage-collected, inside a DataLoader worker) deadlocks the
child. A ``VideoReader`` therefore opens its decoder on first use, remembers the process that
opened it, and when it finds itself in another process (a forked worker) it never touches the
inherited decoder again: the handle is parked in a module-level list for the life of that process
(never used, never freed there) and a fresh decoder is opened. Pickling (``spawn``/``forkserver``
workers) drops the decoder; the copy reopens on first use.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from einops import rearrange

from vitzoo.data.backends import BACKEND_CLASSES
from vitzoo.data.errors import DataConfigError, VideoDecodeError
from vitzoo.data.probe import truncation_cause

BACKENDS = tuple(BACKEND_CLASSES)
LAYOUTS = ("THWC", "TCHW")

# Decoders inherited through fork: referenced here so they are never used or freed in the child.
_INHERITED: list[object] = []


# decord's messages for common failures, in plain words.
_DECORD_HINTS = {
    "Error reading": "not a readable media container",
    "cannot find video stream": "no decodable video stream (none, or an unknown codec)",
    "av_read_frame failed": "the file is truncated or its data is corrupt",
}


def _describe(exc: BaseException) -> str:
    """A one-line cause from a backend exception (decord prefixes ``[time] file.cc:line:``)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = re.sub(r"^(\[[0-9:]+\] \S+:\d+: )+", "", text)
    hint = next((h for key, h in _DECORD_HINTS.items() if key in text), None)
    detail = f"{type(exc).__name__}: {text}"[:400]
    return f"{hint}; {detail}" if hint else detail


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoDecodeError(path, "file not found")
    if not path.is_file():
        raise VideoDecodeError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")


class VideoReader:
    """Random access to the frames of one video file.

    Args:
        path: the video file.
        backend: ``"decord"`` (default, fast seeking) or ``"pyav"`` (reference decoder, forward
            decoding). There is no automatic fallback from one to the other.
        num_threads: decoder threads; ``0`` lets the library choose (all cores). The default of 1 is
            right inside DataLoader workers, where parallelism comes from the workers.
        width, height: decode-time resize to exactly this size (give both or neither).
        short_side: decode-time resize so the shorter side has this length (aspect kept). Mutually
            exclusive with ``width``/``height``.
        layout: default layout of :meth:`get`: ``"THWC"`` or ``"TCHW"``.

    The file is opened on first use (metadata or frames) or by :meth:`open`; :meth:`close` or the
    context manager releases it. Every failure to open or decode raises :class:`VideoDecodeError`.

    Example::

        with VideoReader("clip.mp4", short_side=128) as reader:
            clip = reader.get([0, 4, 8, 12], layout="TCHW")  # (4, 3, H, W) uint8
    """

    def __init__(
        self,
        path: str | Path,
        *,
        backend: Literal["decord", "pyav"] = "decord",
        num_threads: int = 1,
        width: int | None = None,
        height: int | None = None,
        short_side: int | None = None,
        layout: Literal["THWC", "TCHW"] = "THWC",
    ) -> None:
        if backend not in BACKEND_CLASSES:
            raise DataConfigError(f"VideoReader: backend={backend!r}; use one of {BACKENDS}")
        if layout not in LAYOUTS:
            raise DataConfigError(f"VideoReader: layout={layout!r}; use one of {LAYOUTS}")
        if (width is None) != (height is None):
            raise DataConfigError("VideoReader: give both width and height for a decode-time resize, or neither")
        if width is not None and short_side is not None:
            raise DataConfigError("VideoReader: width/height and short_side are mutually exclusive; give one")
        for name, value in (("width", width), ("height", height), ("short_side", short_side)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise DataConfigError(f"VideoReader: {name}={value!r}; use an integer number of pixels >= 1")
        if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 0:
            raise DataConfigError(f"VideoReader: num_threads={num_threads!r}; use an integer >= 0 (0: all cores)")
        self.path = Path(path)
        self.backend = backend
        self.num_threads = num_threads
        self.size = (height, width) if width is not None else None
        self.short_side = short_side
        self.layout = layout
        self._decoder = None
        self._pid: int | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def open(self) -> VideoReader:
        """Open the decoder now (it is otherwise opened on first use). Returns ``self``."""
        if self._decoder is not None and self._pid != os.getpid():
            _INHERITED.append(self._decoder)  # inherited through fork: never touch it here
            self._decoder = None
        if self._decoder is None:
            _check_file(self.path)
            cls = BACKEND_CLASSES[self.backend]
            try:
                decoder = cls(self.path, num_threads=self.num_threads, size=self.size, short_side=self.short_side)
            except ImportError:  # a missing library is not a bad file (on_error="skip" must not hide it)
                raise
            except Exception as exc:
                raise VideoDecodeError(self.path, f"{self.backend} could not open it ({_describe(exc)})") from exc
            if decoder.num_frames < 1:
                decoder.close()
                raise VideoDecodeError(self.path, f"the video has {decoder.num_frames} frames")
            cause = truncation_cause(decoder.timing, decoder.declared)
            if cause is not None:
                decoder.close()
                raise VideoDecodeError(self.path, cause)
            self._decoder, self._pid = decoder, os.getpid()
        return self

    @property
    def is_open(self) -> bool:
        """Whether this process holds an open decoder for the file."""
        return self._decoder is not None and self._pid == os.getpid()

    def close(self) -> None:
        """Release the decoder and its file handle. Safe to call repeatedly; reopened on next use."""
        decoder, self._decoder = self._decoder, None
        if decoder is None:
            return
        if self._pid != os.getpid():
            _INHERITED.append(decoder)
        else:
            decoder.close()

    def __enter__(self) -> VideoReader:
        return self.open()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown or a half-built object
            self.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_decoder"], state["_pid"] = None, None  # decoders never travel between processes
        return state

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"VideoReader({str(self.path)!r}, backend={self.backend!r}, {state})"

    # -- metadata --------------------------------------------------------------------------------
    @property
    def _dec(self):
        self.open()
        return self._decoder

    @property
    def num_frames(self) -> int:
        """Number of frames present in the file (always >= 1 for an opened reader)."""
        return int(self._dec.timing.num_frames)

    def __len__(self) -> int:
        return self.num_frames

    @property
    def fps(self) -> float:
        """Average frame rate, ``num_frames / duration`` (the nominal rate for constant-rate files; 0 if unknown)."""
        return float(self._dec.timing.fps)

    @property
    def duration(self) -> float:
        """Seconds from the first frame's start to the last frame's end, from the timestamps (``nan`` if unknown)."""
        return float(self._dec.timing.duration)

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(height, width)`` of decoded frames, after rotation and any decode-time resize."""
        try:
            return tuple(self._dec.frame_shape)
        except VideoDecodeError:
            raise
        except Exception as exc:
            raise VideoDecodeError(self.path, f"reading frame 0 failed ({_describe(exc)})") from exc

    # -- frames ----------------------------------------------------------------------------------
    def get(self, indices, *, layout: Literal["THWC", "TCHW"] | None = None) -> torch.Tensor:
        """Decode the frames at ``indices`` (any order, repeats allowed).

        Args:
            indices: 1-D sequence / array / tensor of frame indices in ``[0, num_frames)``.
            layout: ``"THWC"`` or ``"TCHW"``; defaults to the reader's ``layout``.

        Returns:
            uint8 tensor ``(T, H, W, 3)`` or ``(T, 3, H, W)``, RGB, ``T = len(indices)``.

        Raises:
            IndexError: an index is outside ``[0, num_frames)``.
            VideoDecodeError: the file cannot be opened or a requested frame cannot be decoded.
        """
        layout = layout or self.layout
        if layout not in LAYOUTS:
            raise DataConfigError(f"VideoReader.get: layout={layout!r}; use one of {LAYOUTS}")
        raw = np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices)
        if raw.dtype.kind not in "iu" and not (raw.dtype.kind == "f" and np.all(raw == np.round(raw))):
            raise ValueError(f"indices must be integers, got {raw.dtype} values such as {raw.ravel()[:4].tolist()}")
        idx = raw.astype(np.int64)
        if idx.ndim != 1 or idx.size == 0:
            raise ValueError(f"indices must be a non-empty 1-D sequence, got shape {idx.shape}")
        decoder = self._dec
        n = decoder.num_frames
        bad = idx[(idx < 0) | (idx >= n)]
        if bad.size:
            raise IndexError(f"frame indices {bad[:8].tolist()} out of range for {n} frames in {self.path}")
        try:
            frames = decoder.get(idx)  # (T, H, W, 3)
        except Exception as exc:
            raise VideoDecodeError(self.path, f"decoding frames failed ({_describe(exc)})") from exc
        clip = torch.from_numpy(np.ascontiguousarray(frames))
        if layout == "TCHW":
            clip = rearrange(clip, "t h w c -> t c h w").contiguous()
        return clip
