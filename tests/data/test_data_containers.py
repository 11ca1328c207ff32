"""Every container and both backends: truncated files, variable frame rate, rotation metadata.

The files are written here with PyAV (tiny: 32x48, a few dozen frames) by ``write_video``; frames carry
their index (``index_coded_frames``) so a test can tell which frame it got.
"""

from __future__ import annotations

import numpy as np
import pytest

import vitzoo.data.video
from vitzoo.data import BACKENDS, VideoDecodeError, VideoReader, index_coded_frames, read_frame_index, write_video

CONTAINERS = ("mp4", "mov", "mkv", "webm", "avi")
NUM, HEIGHT, WIDTH, FPS = 24, 32, 48, 25


def _textured(num_frames: int, height: int, width: int) -> np.ndarray:
    """Index-coded frames plus noise, so the compressed frames spread over the whole file."""
    noise = np.random.default_rng(0).integers(-12, 13, (num_frames, height, width, 3))
    return np.clip(index_coded_frames(num_frames, height, width).astype(np.int16) + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def complete(tmp_path_factory) -> dict[str, bytes]:
    """Container -> bytes of a complete 24-frame file (mp4/mov with the index in front, as streamed files are)."""
    root = tmp_path_factory.mktemp("containers")
    frames = _textured(NUM, HEIGHT, WIDTH)
    return {
        ext: write_video(root / f"full.{ext}", frames, FPS, faststart=ext in ("mp4", "mov")).read_bytes()
        for ext in CONTAINERS
    }


def _cut(tmp_path, data: bytes, ext: str, keep: float):
    path = tmp_path / f"cut_{round(keep * 100)}.{ext}"
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _outcome(path, backend):
    """``"refused"`` (open raised), ``"failed"`` (decoding raised) or ``(num_frames, frames are 0..n-1)``."""
    try:
        reader = VideoReader(path, backend=backend).open()
    except VideoDecodeError as exc:
        assert exc.path == path and str(path) in str(exc)
        return "refused"
    with reader:
        try:
            frames = reader.get(np.arange(reader.num_frames))
        except VideoDecodeError:
            return "failed"
        assert len(frames) == reader.num_frames  # never fewer frames than asked for
        return reader.num_frames, [read_frame_index(f) for f in frames] == list(range(reader.num_frames))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ext", CONTAINERS)
def test_complete_files_are_read_exactly(tmp_path, complete, ext, backend):
    """The negative control of the truncation check: complete files of every container pass it."""
    path = _cut(tmp_path, complete[ext], ext, 1.0)
    assert _outcome(path, backend) == (NUM, True)
    with VideoReader(path, backend=backend) as reader:
        assert (reader.fps, reader.duration) == (FPS, NUM / FPS)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ext", CONTAINERS)
@pytest.mark.parametrize("keep", [0.5, 0.7, 0.9])
def test_truncated_file_is_refused_when_opened(tmp_path, complete, ext, backend, keep):
    path = _cut(tmp_path, complete[ext], ext, keep)
    with pytest.raises(VideoDecodeError, match="truncated") as info:
        VideoReader(path, backend=backend).open()
    assert info.value.path == path and str(path) in str(info.value)
    if backend == "pyav" or ext in ("mkv", "webm", "avi"):  # (decord's FFmpeg refuses cut mp4/mov itself)
        assert "declares" in info.value.cause  # what the header promised and what is there


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ext", CONTAINERS)
def test_no_cut_gives_silently_fewer_or_wrong_frames(tmp_path, complete, ext, backend):
    """Wherever the file is cut: refused, or a decode error, or exactly the frames it reports, all right.

    A cut too small to detect against the declared duration (mkv/webm: at most two frame periods) may be
    read, but then as the frames that are really there.
    """
    for keep in np.arange(0.30, 1.0, 0.04):
        outcome = _outcome(_cut(tmp_path, complete[ext], ext, keep), backend)
        if outcome in ("refused", "failed"):
            continue
        num_frames, correct = outcome
        assert correct, (keep, outcome)
        assert num_frames >= NUM - 2, (keep, outcome)


def test_truncation_check_is_what_catches_it(tmp_path, complete, monkeypatch):
    """Negative control: without the check, both backends read a truncated mkv as a shorter video."""
    path = _cut(tmp_path, complete["mkv"], "mkv", 0.7)
    monkeypatch.setattr(vitzoo.data.video, "truncation_cause", lambda timing, declared: None)
    for backend in BACKENDS:
        num_frames, correct = _outcome(path, backend)
        assert correct and num_frames < NUM - 2


# -- variable frame rate ----------------------------------------------------------------------------------
VFR_GAPS = np.random.default_rng(0).choice([0.02, 0.04, 0.2], size=32)  # seconds between frames
VFR_STARTS = np.concatenate([[0.0], np.cumsum(VFR_GAPS[:-1])])
VFR_DURATION = float(VFR_STARTS[-1] + VFR_GAPS[-1])  # 3.0 s for 32 frames, at a nominal 25 fps


@pytest.fixture(scope="module")
def vfr(tmp_path_factory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("vfr")
    frames = index_coded_frames(len(VFR_STARTS), HEIGHT, WIDTH)
    return {ext: write_video(root / f"vfr.{ext}", frames, FPS, timestamps=VFR_STARTS) for ext in ("mkv", "webm", "mp4")}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ext", ["mkv", "webm", "mp4"])
def test_variable_frame_rate_duration_comes_from_timestamps(vfr, ext, backend):
    assert abs(VFR_DURATION - 32 / FPS) > 1  # nominal rate x frame count would be 1.28 s: far off
    with VideoReader(vfr[ext], backend=backend) as reader:
        assert reader.num_frames == 32
        assert reader.duration == pytest.approx(VFR_DURATION, abs=0.05)  # the last frame's length varies by muxer
        assert reader.fps == pytest.approx(32 / reader.duration)
        assert [read_frame_index(f) for f in reader.get(np.arange(32))] == list(range(32))


def test_constant_rate_stays_exact(tmp_path):
    path = write_video(tmp_path / "ntsc.mp4", index_coded_frames(10, HEIGHT, WIDTH), 30000 / 1001)
    for backend in BACKENDS:
        with VideoReader(path, backend=backend) as reader:
            assert reader.fps == pytest.approx(30000 / 1001, rel=1e-12)
            assert reader.duration == pytest.approx(10 * 1001 / 30000, rel=1e-12)


# -- rotation -----------------------------------------------------------------------------------------------
def _marked(num_frames: int) -> np.ndarray:
    frames = index_coded_frames(num_frames, HEIGHT, 64)
    frames[:, :8, :8] = 255  # a white corner: tells every quarter turn apart
    return frames


@pytest.fixture(scope="module")
def rotated(tmp_path_factory) -> dict[int, object]:
    root = tmp_path_factory.mktemp("rotated")
    return {deg: write_video(root / f"rot{deg}.mp4", _marked(6), FPS, rotation=deg) for deg in (0, 90, 180, 270)}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_rotation_is_applied_like_a_player(rotated, degrees, backend):
    expected = np.stack([np.rot90(f, degrees // 90) for f in _marked(6)])  # counter-clockwise, as displayed
    with VideoReader(rotated[degrees], backend=backend) as reader:
        assert reader.frame_shape == expected.shape[1:3]  # known before any frame is asked for
        frames = reader.get([0, 5]).numpy()
    assert frames.shape == expected[[0, 5]].shape
    assert np.abs(frames.astype(int) - expected[[0, 5]]).mean() < 1.0  # only compression noise
    if degrees:  # the check can fail: the stored (unturned) frames are far from the expected ones
        unturned = np.rot90(expected[[0, 5]], -degrees // 90, axes=(1, 2))
        assert unturned.shape != frames.shape or np.abs(unturned.astype(int) - frames).mean() > 20


@pytest.mark.parametrize("resize", [{"short_side": 16}, {"width": 20, "height": 30}])
def test_rotated_and_resized_backends_agree(rotated, resize):
    with VideoReader(rotated[90], **resize) as a, VideoReader(rotated[90], backend="pyav", **resize) as b:
        assert a.frame_shape == b.frame_shape == ((32, 16) if "short_side" in resize else (30, 20))
        diff = (a.get([0, 3]).int() - b.get([0, 3]).int()).abs()
    assert diff.float().mean() < 2.0


# -- mp4 edit lists (trimmed without re-encoding) -----------------------------------------------------------
def _remux_shifted(src, dst, frames: int) -> None:
    """Copy ``src`` with timestamps moved ``frames`` frames earlier: its edit list then hides the first ones."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        shift = round(frames / (FPS * stream.time_base))
        for packet in inp.demux(stream):
            if packet.dts is None:  # the flush packet
                continue
            packet.pts, packet.dts, packet.stream = packet.pts - shift, packet.dts - shift, copy
            out.mux(packet)


def _cut_edit_list(path, keep: float) -> None:
    """Shorten the (single, version 0) edit-list entry to ``keep`` of its duration: the last frames are hidden."""
    data = bytearray(path.read_bytes())
    box = data.find(b"elst")
    assert data[box + 4] == 0 and data[box + 8 : box + 12] == b"\x00\x00\x00\x01"
    duration = int.from_bytes(data[box + 12 : box + 16], "big")
    data[box + 12 : box + 16] = round(duration * keep).to_bytes(4, "big")
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def trimmed(tmp_path_factory) -> dict[str, object]:
    """20-frame mp4s whose edit list hides frames 0-1 (``start``), 12-19 (``end``), or 0-1 and 11-19 (``both``)."""
    root = tmp_path_factory.mktemp("trimmed")
    source = write_video(root / "source.mp4", index_coded_frames(20, HEIGHT, 64), FPS)
    files = {"start": root / "start.mp4", "end": root / "end.mp4", "both": root / "both.mp4"}
    _remux_shifted(source, files["start"], 2)
    files["end"].write_bytes(source.read_bytes())
    _cut_edit_list(files["end"], 0.6)
    _remux_shifted(source, files["both"], 2)
    _cut_edit_list(files["both"], 0.5)
    return files


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("trim", "shown"), [("start", range(2, 20)), ("end", range(12)), ("both", range(2, 11))])
def test_edit_list_hidden_frames_are_not_offered(trimmed, trim, shown, backend):
    """Frames an edit list hides are not counted, and every index gives the frame a player shows there.

    decord on its own counts hidden frames and answers their indices with repeats of other frames; with
    a trimmed start its indices also shift depending on how it gets there, so those files are refused.
    """
    if backend == "decord" and trim != "end":
        with pytest.raises(VideoDecodeError, match="backend='pyav'"):
            VideoReader(trimmed[trim], backend=backend).open()
        return
    with VideoReader(trimmed[trim], backend=backend) as reader:
        assert reader.num_frames == len(shown)
        assert [read_frame_index(f) for f in reader.get(np.arange(reader.num_frames))] == list(shown)
        assert [read_frame_index(f) for f in reader.get([len(shown) - 1, 0])] == [shown[-1], shown[0]]
