"""Decoder backends behind :class:`vitzoo.data.VideoReader`: decord (default) and PyAV (reference).

A backend is opened on one file and then holds ``timing`` (the frames shown: count, average frame
rate and duration from their timestamps) and ``declared`` (what the container's header states, for
the truncation check), both from :mod:`vitzoo.data.probe`, so the two backends agree. It returns RGB
frames as a ``(N, H, W, 3)`` uint8 numpy array for sorted-or-not frame indices, turned upright as a
player shows them (rotation metadata applied the same way by both), and is closed explicitly.
Backends raise whatever their library raises; :mod:`vitzoo.data.video` turns that into
:class:`VideoDecodeError`. Both libraries are imported lazily so that ``import vitzoo.data`` needs
neither (the decord backend also uses PyAV, to probe the file).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from vitzoo.data.probe import probe_container, probe_file, timing_from_starts


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

    decord applies a rotation stored in the file (display matrix) and ``width``/``height`` are the
    size after rotation. It exposes neither the header's numbers nor which packets an mp4 edit list
    discards, so the file is also probed with PyAV (:func:`~vitzoo.data.probe.probe_file`: packets
    only, cached per process). decord counts the packets an edit list discards as frames. Discarded at
    the end (a trimmed end), they are simply not offered: ``num_frames = len(decord reader) -
    discarded`` (decord answers those indices with repeats of other frames). Discarded at the start
    (a trimmed start), decord's frame indices shift by different amounts depending on whether it
    seeks or decodes forward, so such a file is refused, naming ``backend="pyav"`` as the fix.

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
        probe = probe_file(path)
        if probe.discarded_early:
            raise ValueError(
                f"an mp4 edit list hides {probe.discarded_early} frame(s) at the start of the video (a trim "
                "without re-encoding); decord returns wrong frames for such files, read it with backend='pyav'"
            )
        self.declared = probe.declared
        shown = len(self._vr) - probe.discarded
        if shown == probe.timing.num_frames:
            self.timing = probe.timing
        else:  # decord's FFmpeg and PyAV's disagree on a damaged file: offer only what both see
            self.timing = timing_from_starts(max(min(shown, probe.timing.num_frames), 0), None, None, probe.timing.fps)

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
        """Frames shown (decord's count of packets, less those an edit list discards)."""
        return self.timing.num_frames

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

    Opening reads every packet once (no decoding) to count the frames shown and collect their
    timestamps (:func:`~vitzoo.data.probe.probe_container`); FFmpeg's decoder drops the packets an
    mp4 edit list discards, so frame ``k`` is the ``k``-th frame shown. A request whose first index
    is at or after the current decode position continues decoding; any other request seeks back to
    the start of the file. Decode-time resizing uses libswscale with bicubic interpolation, the same
    filter decord's FFmpeg scale filter uses by default. A rotation stored in the file (display
    matrix) is applied like decord does: the frame is turned by the matrix's angle rounded to quarter
    turns (mirroring is ignored by both), and ``width``/``height``/``short_side`` refer to the turned
    frame. The angle is read from the first decoded frame, so :attr:`frame_shape` decodes frame 0 if
    no frame has been decoded yet.
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
            self._native = (int(ctx.height), int(ctx.width))  # as stored, before any rotation
            self._size, self._short_side = size, short_side
            self._turns: int | None = None  # quarter turns counter-clockwise, known after the first decode
            probe = probe_container(self._container, self._stream)
            self.timing, self.declared = probe.timing, probe.declared
            self._frames = None  # iterator over decoded frames, restarted by _rewind()
            self._next_index = 0
        except BaseException:
            self._container.close()
            raise

    def _rewind(self) -> None:
        self._container.seek(0)
        self._frames = self._container.decode(self._stream)
        self._next_index = 0

    @property
    def num_frames(self) -> int:
        """Frames shown (video packets, less those an edit list discards)."""
        return self.timing.num_frames

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(height, width)`` of the frames this backend returns (after rotation and resize)."""
        if self._turns is None:
            self.get(np.zeros(1, dtype=np.int64))  # the rotation is known once a frame is decoded
        return self._output_shape()

    def _output_shape(self) -> tuple[int, int]:
        height, width = self._native if self._turns % 2 == 0 else self._native[::-1]
        if self._short_side is not None:
            return short_side_size(height, width, self._short_side)
        return self._size if self._size is not None else (height, width)

    def _to_rgb(self, frame) -> np.ndarray:
        if self._turns is None:
            self._turns = _quarter_turns(frame)
        height, width = self._output_shape()
        if self._turns % 2:
            height, width = width, height  # resize before turning
        if (height, width) == self._native:
            image = frame.to_ndarray(format="rgb24")
        else:
            image = frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="BICUBIC")
        return np.rot90(image, self._turns) if self._turns else image

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
                            f"the stream ended after {self._next_index} frames but the file has "
                            f"{self.num_frames} video packets; frame {target} does not decode"
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


def _quarter_turns(frame) -> int:
    """Counter-clockwise quarter turns of the frame's display matrix (0 without one)."""
    try:
        angle = float(frame.rotation)
    except (TypeError, ValueError):  # a degenerate matrix
        return 0
    return round(angle / 90) % 4 if math.isfinite(angle) else 0


BACKEND_CLASSES = {"decord": DecordBackend, "pyav": PyAVBackend}
