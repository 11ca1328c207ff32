"""VideoReader: metadata, frame accuracy, backend agreement, resize, layouts, laziness, handles."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from vitzoo.data import BACKENDS, VideoReader, read_frame_index, write_video
from vitzoo.data.video import _INHERITED

INDEX_FRAMES, INDEX_H, INDEX_W, INDEX_FPS = 40, 48, 64, 25  # the `videos.index` file (conftest)


@pytest.mark.parametrize("backend", BACKENDS)
def test_metadata(videos, backend):
    assert (videos.index_frames, videos.index_height, videos.index_width) == (INDEX_FRAMES, INDEX_H, INDEX_W)
    with VideoReader(videos.index, backend=backend) as reader:
        assert reader.num_frames == len(reader) == INDEX_FRAMES
        assert reader.fps == pytest.approx(INDEX_FPS)
        assert reader.duration == pytest.approx(INDEX_FRAMES / INDEX_FPS)
        assert reader.frame_shape == (INDEX_H, INDEX_W)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_frame_is_the_right_frame(videos, backend):
    with VideoReader(videos.index, backend=backend) as reader:
        frames = reader.get(np.arange(INDEX_FRAMES))
    assert frames.shape == (INDEX_FRAMES, INDEX_H, INDEX_W, 3) and frames.dtype == torch.uint8
    assert [read_frame_index(f) for f in frames] == list(range(INDEX_FRAMES))


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_access_order_and_repeats(videos, backend):
    order = [17, 3, 39, 0, 17, 38, 1, 1, 25]
    with VideoReader(videos.index, backend=backend) as reader:
        assert [read_frame_index(f) for f in reader.get(order)] == order
        assert [read_frame_index(f) for f in reader.get([5, 6])] == [5, 6]  # again, after a seek
        assert [read_frame_index(f) for f in reader.get([2])] == [2]  # backwards
        assert [read_frame_index(f) for f in reader.get(torch.tensor([30, 31]))] == [30, 31]


def test_backends_agree(videos):
    indices = np.arange(0, INDEX_FRAMES, 3)
    with VideoReader(videos.index, backend="decord") as a, VideoReader(videos.index, backend="pyav") as b:
        fa, fb = a.get(indices), b.get(indices)
        assert (a.num_frames, a.fps, a.frame_shape) == (b.num_frames, b.fps, b.frame_shape)
    diff = (fa.int() - fb.int()).abs()
    assert diff.float().mean() < 1.0 and diff.max() <= 8  # same FFmpeg decode; colour conversion may differ


@pytest.mark.parametrize("backend", BACKENDS)
def test_decode_time_resize(videos, backend):
    with VideoReader(videos.index, backend=backend, width=32, height=24) as reader:
        frames = reader.get([0, 13, 39])
        assert frames.shape == (3, 24, 32, 3) and reader.frame_shape == (24, 32)
    assert [read_frame_index(f) for f in frames] == [0, 13, 39]
    with VideoReader(videos.index, backend=backend, short_side=36) as reader:  # 48x64 -> 36x48
        assert reader.get([0]).shape == (1, 36, 48, 3) and reader.frame_shape == (36, 48)


def test_resize_backends_agree(videos):
    kwargs = {"width": 40, "height": 30}
    with VideoReader(videos.index, **kwargs) as a, VideoReader(videos.index, backend="pyav", **kwargs) as b:
        diff = (a.get([0, 20]).int() - b.get([0, 20]).int()).abs()
    assert diff.float().mean() < 2.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_layouts(videos, backend):
    with VideoReader(videos.index, backend=backend) as reader:
        thwc = reader.get([4, 5])
        tchw = reader.get([4, 5], layout="TCHW")
    assert thwc.shape == (2, INDEX_H, INDEX_W, 3) and tchw.shape == (2, 3, INDEX_H, INDEX_W)
    torch.testing.assert_close(tchw, thwc.permute(0, 3, 1, 2))
    assert tchw.is_contiguous()
    with VideoReader(videos.index, backend=backend, layout="TCHW") as reader:
        assert reader.get([0]).shape == (1, 3, INDEX_H, INDEX_W)


def test_index_errors(videos):
    with VideoReader(videos.index) as reader:
        with pytest.raises(IndexError, match="out of range"):
            reader.get([0, INDEX_FRAMES])
        with pytest.raises(IndexError):
            reader.get([-1])
        with pytest.raises(ValueError):
            reader.get([])
        with pytest.raises(ValueError, match="integers"):
            reader.get([1.5])  # not silently frame 1
        assert read_frame_index(reader.get(np.array([3.0]))[0]) == 3  # whole floats are fine


@pytest.mark.parametrize(
    "kwargs",
    [
        {"backend": "opencv"},
        {"layout": "CTHW"},
        {"width": 32},
        {"width": 32, "height": 24, "short_side": 24},
        {"short_side": 0},
        {"num_threads": -1},
    ],
)
def test_invalid_arguments(videos, kwargs):
    with pytest.raises(ValueError):
        VideoReader(videos.index, **kwargs)


def test_lazy_open_close_and_reopen(videos):
    reader = VideoReader(videos.index)
    assert not reader.is_open  # constructing opens nothing
    assert reader.num_frames == INDEX_FRAMES and reader.is_open
    reader.close()
    reader.close()  # idempotent
    assert not reader.is_open
    assert read_frame_index(reader.get([7])[0]) == 7  # reopened on use
    reader.close()


def test_pickle_drops_the_decoder(videos):
    reader = VideoReader(videos.index, backend="decord").open()
    copy = pickle.loads(pickle.dumps(reader))
    assert reader.is_open and not copy.is_open
    assert read_frame_index(copy.get([9])[0]) == 9
    reader.close()
    copy.close()


def test_reader_opened_in_parent_is_reopened_in_forked_child(videos):
    """An inherited decord handle must never be touched in the child (that deadlocks)."""
    reader = VideoReader(videos.index, backend="decord").open()
    reader.get([3])
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: use the reader, then drop it; both must work without touching the inherited handle
        code = 1
        try:
            ok = read_frame_index(reader.get([11])[0]) == 11 and len(_INHERITED) == 1
            reader.close()
            code = 0 if ok else 2
        finally:
            os.write(write_fd, bytes([code]))
            os._exit(code)
    os.close(write_fd)
    try:
        import select

        ready, _, _ = select.select([read_fd], [], [], 30)
        assert ready, "child hung using a reader inherited through fork"
        assert os.read(read_fd, 1) == b"\x00"
    finally:
        os.close(read_fd)
        if not ready:
            os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert read_frame_index(reader.get([12])[0]) == 12  # the parent's decoder is untouched
    reader.close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
@pytest.mark.parametrize(("backend", "cycles"), [("decord", 2000), ("pyav", 1000)])
def test_no_file_handle_leak(videos, backend, cycles):
    for _ in range(5):  # warm up lazily created library state
        VideoReader(videos.short, backend=backend).get([0])
    before = _open_fds()
    for i in range(cycles):
        with VideoReader(videos.short, backend=backend) as reader:
            assert reader.num_frames == 5
            if i % 100 == 0:
                reader.get([0, 4])
        if i % 500 == 0:
            VideoReader(videos.short, backend=backend).get([1])  # closed by garbage collection only
    assert _open_fds() <= before


@pytest.mark.parametrize("backend", BACKENDS)
def test_decode_time_resize_any_width(videos, backend):
    """decord 0.6's get_batch fails for some widths (16, 24, 48, ...); the reader must still deliver them."""
    for width in [2, 3, 4, 6, 8, 12, 16, 24, 30, 40, 48, 72, 100]:
        with VideoReader(videos.short, backend=backend, width=width, height=20) as reader:
            frames = reader.get([0, 4, 1, 2, 2])
            assert frames.shape == (5, 20, width, 3), width
            if width >= 16:
                assert [read_frame_index(f) for f in frames] == [0, 4, 1, 2, 2]


def test_native_width_48_is_exact(tmp_path):
    """A 48-pixel-wide file (one of decord's bad widths) decodes to the same pixels as with PyAV."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (6, 32, 48, 3), dtype=np.uint8)
    path = write_video(tmp_path / "w48.mp4", frames, 25)
    with VideoReader(path) as a, VideoReader(path, backend="pyav") as b:
        assert a.frame_shape == (32, 48)
        torch.testing.assert_close(a.get([5, 0, 1, 2]), b.get([5, 0, 1, 2]), atol=8, rtol=0)
