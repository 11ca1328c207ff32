"""Every kind of bad input raises VideoDecodeError naming the file; nothing hangs or crashes."""

from __future__ import annotations

import pickle

import pytest

from vitzoo.data import BACKENDS, VideoDecodeError, VideoReader, read_frame_index

OPEN_KINDS = [
    "missing",
    "zero_length",
    "random_bytes",
    "truncated",
    "text",
    "audio_only",
    "unknown_codec",
    "zero_frames",
    "directory",
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", OPEN_KINDS)
def test_bad_file_fails_on_open(videos, kind, backend):
    path = videos.broken[kind]
    reader = VideoReader(path, backend=backend)  # lazy: constructing never fails on content
    with pytest.raises(VideoDecodeError) as info:
        reader.open()
    err = info.value
    assert isinstance(err, RuntimeError)
    assert err.path == path and str(path) in str(err) and err.cause
    assert not reader.is_open
    with pytest.raises(VideoDecodeError):  # metadata and frames fail the same way
        _ = reader.num_frames
    with pytest.raises(VideoDecodeError):
        reader.get([0])


@pytest.mark.parametrize(
    ("kind", "cause"),
    [("missing", "not found"), ("zero_length", "empty"), ("directory", "not a regular file")],
)
def test_causes_are_specific(videos, kind, cause):
    with pytest.raises(VideoDecodeError, match=cause):
        VideoReader(videos.broken[kind]).open()


@pytest.mark.parametrize("backend", BACKENDS)
def test_corrupt_frames_fail_when_read(videos, backend):
    path = videos.broken_on_read["corrupt_frames"]
    with VideoReader(path, backend=backend) as reader:  # the container itself is intact
        assert reader.num_frames == 100
        with pytest.raises(VideoDecodeError, match="decoding frames failed") as info:
            reader.get(range(100))
    assert info.value.path == path


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_faststart(videos, backend):
    """Index at the front, half the frame data missing: refused when opened, by either backend."""
    path = videos.broken_on_read["truncated_faststart"]
    with pytest.raises(VideoDecodeError) as info:
        VideoReader(path, backend=backend).open()
    assert info.value.path == path
    if backend == "pyav":  # decord's own FFmpeg may already fail to open it
        assert "declares 100 frames but only" in info.value.cause


def test_reader_recovers_after_failed_read(videos):
    """A failed PyAV decode does not poison the reader for other frames."""
    with VideoReader(videos.broken_on_read["corrupt_tail"], backend="pyav") as reader:
        with pytest.raises(VideoDecodeError):
            reader.get(range(100))
        assert [read_frame_index(f) for f in reader.get([0, 1])] == [0, 1]


def test_error_survives_pickling_and_dataloader_reraise(videos):
    err = VideoDecodeError(videos.broken["text"], "bad")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.path, copy.cause, str(copy)) == (err.path, err.cause, str(err))
    rebuilt = VideoDecodeError("Caught VideoDecodeError in DataLoader worker process 0 ...")  # torch's form
    assert rebuilt.path is None and "worker" in str(rebuilt)
