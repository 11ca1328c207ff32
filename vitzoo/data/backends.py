"""Decoder backends behind :class:`vitzoo.data.VideoReader`: decord (default) and PyAV (reference).

A backend is opened on one file, reports metadata, returns RGB frames as a ``(N, H, W, 3)`` uint8
numpy array for sorted-or-not frame indices, and is closed explicitly. Backends raise whatever their
library raises; :mod:`vitzoo.data.video` turns that into :class:`VideoDecodeError`. Both libraries
are imported lazily so that ``import vitzoo.data`` needs neither.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def short_side_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """Output ``(height, width)`` that scales the shorter side to ``short_side``, keeping aspect."""
    if height <= width:
        return short_side, max(1, round(width * short_side / height))
    return max(1, round(height * short_side / width)), short_side


def _strip_row_padding(raw: np.ndarray) -> np.ndarray:
    """decord frame ``(H, W, linesize / W)`` whose rows carry padding -> ``(H, W, 3)`` RGB."""
    height, width = raw.shape[:2]
    if raw.shape[2] == 3:
        return raw
    return raw.reshape(height, -1)[:, : 3 * width].reshape(height, width, 3)


class DecordBackend:
    """decord ``VideoReader`` with optional decode-time resize (``width``/``height`` or ``short_side``).

    decord needs the output size when the file is opened and exposes no frame-size query, so
    ``short_side`` costs one extra open: the file is probed at native size (one frame decoded),
    then reopened at the computed size.

    decord 0.6's ``get_batch`` fails (``DECORDArrayCopyFromTo: The size must exactly match``) for some
    output widths (2, 3, 4, 6, 8, 12, 16, 24, 48, 72 in our tests, native or resized, whatever the
    source): FFmpeg pads those rows and decord copies the padding. Single-frame access returns the
    padded rows intact, so for such files frames are read one at a time (consecutive indices without
    re-seeking) and the padding is cut off: exact pixels, somewhat slower. Real videos are wider.
    """

    name = "decord"

    def __init__(
        self,
        path: Path,
        *,
        num_threads: int,
        size: tuple[int, int] | None,
        short_side: int | None,
    ) -> None:
        import decord

        self._decord = decord
        self._num_threads = num_threads
        self._path = path
        self._vr = self._open(size)
        self._shape: tuple[int, int] | None = size
        self._row_padded = False  # set when get_batch cannot handle this width (see class docstring)
        if short_side is not None:
            h, w = self.frame_shape
            if min(h, w) != short_side:
                target = short_side_size(h, w, short_side)
                self._vr = None  # free the probe before opening again
                self._vr = self._open(target)
                self._shape, self._row_padded = target, False

    def _open(self, size: tuple[int, int] | None):
        height, width = size if size is not None else (-1, -1)
        return self._decord.VideoReader(
            str(self._path),
            ctx=self._decord.cpu(0),
            width=width,
            height=height,
            num_threads=self._num_threads,
        )

    @property
    def num_frames(self) -> int:
        """Frame count as reported by the container (FFmpeg's number)."""
        return len(self._vr)

    @property
    def fps(self) -> float:
        """Average frame rate."""
        return float(self._vr.get_avg_fps())

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(height, width)`` of the frames this backend returns."""
        if self._shape is None:
            frame = self.get(np.zeros(1, dtype=np.int64))  # decord has no size query; decode frame 0
            self._shape = (int(frame.shape[1]), int(frame.shape[2]))
        return self._shape

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Frames at ``indices`` as ``(N, H, W, 3)`` uint8 (duplicates are decoded once by decord)."""
        if not self._row_padded:
            try:
                return self._vr.get_batch(indices.tolist()).asnumpy()
            except self._decord.DECORDError as exc:
                if "DECORDArrayCopyFromTo" not in str(exc):
                    raise
                self._row_padded = True
        return self._get_frame_by_frame(indices)

    def _get_frame_by_frame(self, indices: np.ndarray) -> np.ndarray:
        frames: dict[int, np.ndarray] = {}
        previous = None
        for index in np.unique(indices).tolist():
            if previous is None or index != previous + 1:
                self._vr.seek_accurate(index)
            frames[index] = _strip_row_padding(self._vr.next().asnumpy())
            previous = index
        return np.stack([frames[i] for i in indices.tolist()])

    def close(self) -> None:
        """Release the decoder and its file handle (decord frees them when the object is deleted)."""
        self._vr = None


class PyAVBackend:
    """PyAV (FFmpeg) decoder. Simple and exact rather than fast: it decodes forward from the start.

    A request whose first index is at or after the current decode position continues decoding; any
    other request seeks back to the start of the file. Decode-time resizing uses libswscale with
    bicubic interpolation, the same filter decord's FFmpeg scale filter uses by default.
    """

    name = "pyav"

    def __init__(
        self,
        path: Path,
        *,
        num_threads: int,
        size: tuple[int, int] | None,
        short_side: int | None,
    ) -> None:
        import av

        self._container = av.open(str(path))
        try:
            streams = self._container.streams.video
            if not streams:
                raise ValueError("the file has no video stream")
            self._stream = streams[0]
            ctx = self._stream.codec_context
            if ctx is None:
                raise ValueError("the video stream's codec is unknown to FFmpeg (no decoder)")
            ctx.thread_count = num_threads
            ctx.thread_type = "AUTO"
            native = (int(ctx.height), int(ctx.width))
            if short_side is not None:
                size = short_side_size(*native, short_side)
            self._resize = size is not None and size != native
            self._shape = size if size is not None else native
            self._num_frames = int(self._stream.frames) or self._count_packets()
            rate = self._stream.average_rate or self._stream.guessed_rate or self._stream.base_rate
            self._fps = float(rate) if rate else 0.0
            self._frames = None  # iterator over decoded frames, restarted by _rewind()
            self._next_index = 0
        except BaseException:
            self._container.close()
            raise

    def _count_packets(self) -> int:
        # Containers such as WebM/MKV do not store a frame count; counting packets needs no decoding.
        count = sum(1 for packet in self._container.demux(self._stream) if packet.size)
        self._container.seek(0)
        return count

    def _rewind(self) -> None:
        self._container.seek(0)
        self._frames = self._container.decode(self._stream)
        self._next_index = 0

    @property
    def num_frames(self) -> int:
        """Frame count stored in the container (or the number of video packets when it stores none)."""
        return self._num_frames

    @property
    def fps(self) -> float:
        """Average frame rate."""
        return self._fps

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(height, width)`` of the frames this backend returns."""
        return self._shape

    def _to_rgb(self, frame) -> np.ndarray:
        if not self._resize:
            return frame.to_ndarray(format="rgb24")
        height, width = self._shape
        return frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="BICUBIC")

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Frames at ``indices`` as ``(N, H, W, 3)`` uint8, decoding forward up to the largest index."""
        wanted = np.unique(indices)
        if self._frames is None or wanted[0] < self._next_index:
            self._rewind()
        found: dict[int, np.ndarray] = {}
        try:
            for target in wanted.tolist():
                while self._next_index <= target:
                    frame = next(self._frames, None)
                    if frame is None:
                        raise ValueError(
                            f"the stream ended after {self._next_index} frames but the container reports "
                            f"{self._num_frames}; frame {target} does not exist"
                        )
                    if self._next_index == target:
                        found[target] = self._to_rgb(frame)
                    self._next_index += 1
        except BaseException:
            self._frames = None  # a failed decoder is not resumed; the next request starts over
            raise
        return np.stack([found[i] for i in indices.tolist()])

    def close(self) -> None:
        """Close the container and its file handle."""
        self._frames = None
        self._container.close()


BACKEND_CLASSES = {"decord": DecordBackend, "pyav": PyAVBackend}
