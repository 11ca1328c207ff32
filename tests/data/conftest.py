"""Small generated videos shared by the data tests (written once per session into a temp dir)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from vitzoo.data import make_motion_dataset, make_test_video, write_video

INDEX_FRAMES, INDEX_H, INDEX_W, INDEX_FPS = 40, 48, 64, 25


@dataclass
class Videos:
    """Paths of the shared test videos."""

    root: Path
    index: Path  # 40 frames, 48x64, 25 fps, frame i encodes i (read_frame_index)
    short: Path  # 5 frames, 32x32, frame i encodes i
    fps50: Path  # 40 frames at 50 fps, frame i encodes i
    broken: dict[str, Path]  # kind -> file that must raise VideoDecodeError when opened
    broken_on_read: dict[str, Path]  # kind -> file that opens but fails when frames are decoded
    index_frames: int = INDEX_FRAMES
    index_height: int = INDEX_H
    index_width: int = INDEX_W
    index_fps: float = INDEX_FPS


def _write_zero_frame_mp4(path: Path) -> None:
    import av

    with av.open(str(path), mode="w") as container:  # a header and a video stream, no frames
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        container.start_encoding()


def _write_audio_only_mp4(path: Path) -> None:
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def _noisy_index_video(path: Path, *, faststart: bool) -> bytes:
    """A 100-frame 96x128 video with enough texture that its bytes spread over the whole file."""
    import av

    from vitzoo.data import index_coded_frames

    rng = np.random.default_rng(0)
    frames = index_coded_frames(100, 96, 128).astype(np.int16) + rng.integers(-4, 5, (100, 96, 128, 3))
    frames = np.clip(frames, 0, 255).astype(np.uint8)
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), mode="w", options=options) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path.read_bytes()


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> Videos:
    """Write every shared video once."""
    root = tmp_path_factory.mktemp("videos")
    index = make_test_video(root / "index.mp4", INDEX_FRAMES, INDEX_H, INDEX_W, INDEX_FPS)
    short = make_test_video(root / "short.mp4", 5, 32, 32, 25)
    fps50 = make_test_video(root / "fps50.mp4", 40, 32, 32, 50)
    valid = index.read_bytes()

    broken = {
        "missing": root / "does_not_exist.mp4",
        "zero_length": root / "zero_length.mp4",
        "random_bytes": root / "random_bytes.mp4",
        "truncated": root / "truncated.mp4",  # first half of a valid mp4 (index at the end: lost)
        "text": root / "text.mp4",
        "audio_only": root / "audio_only.mp4",
        "unknown_codec": root / "unknown_codec.mp4",  # codec tag avc1 -> zzzz
        "zero_frames": root / "zero_frames.mp4",
        "directory": root / "a_directory.mp4",
    }
    broken["zero_length"].write_bytes(b"")
    broken["random_bytes"].write_bytes(np.random.default_rng(0).bytes(4096))
    broken["truncated"].write_bytes(valid[: len(valid) // 2])
    broken["text"].write_text("this is a text file, not a video\n" * 50)
    _write_audio_only_mp4(broken["audio_only"])
    broken["unknown_codec"].write_bytes(valid.replace(b"avc1", b"zzzz"))
    _write_zero_frame_mp4(broken["zero_frames"])
    broken["directory"].mkdir()

    # Files whose damage is only found while decoding (at least with one backend).
    corrupt = bytearray(_noisy_index_video(root / "noisy.mp4", faststart=False))
    start = corrupt.find(b"mdat") + 8
    rng = np.random.default_rng(1)
    for k in range(1, 6):  # overwrite five 200-byte runs of compressed frame data
        offset = start + (corrupt.find(b"moov") - start) * k // 7
        corrupt[offset : offset + 200] = rng.bytes(200)
    tail = bytearray(_noisy_index_video(root / "noisy.mp4", faststart=False))
    offset = start + (tail.find(b"moov") - start) * 6 // 7
    tail[offset : offset + 200] = rng.bytes(200)  # one damaged run near the end: the first frames decode
    faststart = _noisy_index_video(root / "noisy_faststart.mp4", faststart=True)
    broken_on_read = {
        "corrupt_frames": root / "corrupt_frames.mp4",
        "corrupt_tail": root / "corrupt_tail.mp4",
        "truncated_faststart": root / "truncated_faststart.mp4",  # index kept, frame data cut
    }
    broken_on_read["corrupt_frames"].write_bytes(bytes(corrupt))
    broken_on_read["corrupt_tail"].write_bytes(bytes(tail))
    broken_on_read["truncated_faststart"].write_bytes(faststart[: len(faststart) // 2])
    return Videos(root, index, short, fps50, broken, broken_on_read)


@pytest.fixture(scope="session")
def motion(tmp_path_factory):
    """A tiny motion dataset: 8 train + 4 val videos of 8 frames, 32x32."""
    root = tmp_path_factory.mktemp("motion")
    return make_motion_dataset(root, num_train=8, num_val=4, num_frames=8, size=32, seed=0, progress=False)


@pytest.fixture
def write(tmp_path):
    """Write a small valid video at a path relative to ``tmp_path``; returns the absolute path."""

    def _write(relative: str, num_frames: int = 8, size: int = 32) -> Path:
        frames = np.full((num_frames, size, size, 3), 128, np.uint8)
        return write_video(tmp_path / relative, frames, 25)

    return _write
