"""``vitzoo data prepare``: re-encoded copies keep the layout, labels and frame order; resumable; rawframes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import official_trees
from vitzoo.cli.main import main
from vitzoo.data import DataSpec, VideoReader, read_frame_index
from vitzoo.data.frames import read_jpeg_frames
from vitzoo.data.prepare import PrepareOptions, output_size, prepare_dataset
from vitzoo.data.recipe import read_layout_split


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("videos")


def _labels(root, layout, split, **extra):
    found = read_layout_split(DataSpec(root=str(root), layout=layout, **extra), split)
    return {p.relative_to(root).as_posix(): label for p, label in found.samples}


def test_output_size_keeps_aspect_even_and_never_enlarges():
    assert output_size(1080, 1920, 256) == (256, 456)
    assert output_size(240, 320, 256) == (240, 320)
    assert output_size(101, 99, 50) == (52, 50)


@pytest.mark.parametrize("layout", ["ucf101", "ssv2"])  # xvid avi, vp9 webm
def test_a_prepared_copy_reads_like_the_original(tmp_path, cache, layout):
    tree = getattr(official_trees, layout)(tmp_path / "data", cache)
    out = tmp_path / "small"
    report = prepare_dataset(tree.root, out, PrepareOptions(short_side=16), progress=False)
    assert report.failed == {} and len(report.written) == len({p for v in tree.expected.values() for p in v})
    for split in ("train", "val"):
        assert _labels(out, layout, split) == _labels(tree.root, layout, split)
    some = next(iter(tree.expected[(1, "train")]))
    for backend in ("pyav", "decord"):
        with VideoReader(out / some, backend=backend) as reader:
            assert reader.frame_shape == (16, 16) and reader.num_frames == official_trees.FRAMES
            assert [read_frame_index(f) for f in reader.get([0, 7, 23])] == [0, 7, 23]
    again = prepare_dataset(tree.root, out, PrepareOptions(short_side=16), progress=False)
    assert again.written == [] and len(again.skipped) == len(report.written) and again.copied == 0


def test_fps_resampling_drops_frames_by_time(tmp_path, cache):
    tree = official_trees.ucf101(tmp_path / "data", cache)
    out = tmp_path / "6fps"
    prepare_dataset(tree.root, out, PrepareOptions(short_side=32, fps=official_trees.FPS / 2), progress=False)
    with VideoReader(out / next(iter(tree.expected[(1, "val")])), backend="pyav") as reader:
        assert reader.fps == pytest.approx(official_trees.FPS / 2)
        assert [read_frame_index(f) for f in reader.get(list(range(reader.num_frames)))] == list(range(0, 24, 2))


def test_cli_reports_a_corrupt_video_and_resumes_after_an_interrupted_file(tmp_path, cache, capsys):
    tree = official_trees.kinetics(tmp_path / "data", cache)
    out, report = tmp_path / "small", tmp_path / "report.json"
    argv = ["data", "prepare", "--root", str(tree.root), "--out", str(out), "--short-side", "16", "--workers", "0"]
    assert main([*argv, "--report", str(report)]) == 0
    assert "13 videos prepared, 0 already done, 1 failed, 2 other files copied" in capsys.readouterr().out
    assert list(json.loads(report.read_text())["failed"]) == tree.corrupt["train"]
    done = out / next(iter(tree.expected[(1, "val")]))
    done.unlink()  # as if interrupted while writing it: only its temporary file exists
    (done.parent / f".{done.name}.tmp").write_bytes(b"half a video")
    assert main(argv) == 0
    assert "1 videos prepared, 12 already done, 1 failed" in capsys.readouterr().out
    with VideoReader(done, backend="pyav") as reader:
        assert reader.num_frames == official_trees.FRAMES
    assert not (done.parent / f".{done.name}.tmp").exists()


def test_rawframes_extraction_writes_lists_that_read_like_the_layout(tmp_path, cache, capsys):
    tree = official_trees.ucf101(tmp_path / "data", cache)
    out = tmp_path / "frames"
    assert (
        main(
            [
                "data",
                "prepare",
                "--root",
                str(tree.root),
                "--out",
                str(out),
                "--rawframes",
                "--layout",
                "ucf101",
                "--fold",
                "2",
                "--workers",
                "0",
            ]
        )
        == 0
    )
    for split, list_file in (("train", "train.txt"), ("val", "val.txt")):
        got = _labels(out, "rawframes", list_file, train="train.txt", val="val.txt")
        want = {p.removesuffix(".avi"): v for p, v in tree.expected[(2, split)].items()}
        assert got == want
    assert (out / "classes.txt").read_text().splitlines() == official_trees.UCF_CLASSES
    folder, count, _ = (out / "val.txt").read_text().splitlines()[0].rsplit(" ", 2)
    assert count == str(official_trees.FRAMES)
    frames = read_jpeg_frames(out / folder, np.array([0, 9, 23]))
    assert [read_frame_index(f, layout="CHW") for f in frames] == [0, 9, 23]
