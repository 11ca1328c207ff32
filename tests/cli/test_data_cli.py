"""``vitzoo data check`` on fabricated official trees: the report's counts and lists, --write-list, exit status."""

from __future__ import annotations

import json

import pytest

from tests.helpers import official_trees
from vitzoo.cli.main import main


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="module")
def kinetics(tmp_path_factory, cache):
    return official_trees.kinetics(tmp_path_factory.mktemp("kinetics"), cache)


def _check(layout, root, *extra):
    return main(["data", "check", "--layout", layout, "--root", str(root), "--num-frames", "4", *extra])


def test_kinetics_report_counts_missing_and_corrupt(kinetics, tmp_path, capsys):
    report_path, lists = tmp_path / "report.json", tmp_path / "lists"
    assert (
        _check("kinetics", kinetics.root, "--workers", "0", "--report", str(report_path), "--write-list", str(lists))
        == 0
    )
    out = capsys.readouterr().out
    assert "train: 9 listed, 8 usable, 0 missing, 1 undecodable" in out
    assert "val: 6 listed, 5 usable, 1 missing, 0 undecodable" in out
    report = json.loads(report_path.read_text())
    assert report["train"]["undecodable"] == kinetics.corrupt["train"]
    assert report["val"]["missing"] == kinetics.missing["val"]
    assert report["val"]["classes"] == sorted(official_trees.KINETICS_CLASSES)
    assert report["train"]["num_usable"] == 8 and report["train"]["num_listed"] == 9
    assert report["train"]["height"]["min"] == official_trees.SIZE
    assert report["train"]["too_short"] == []  # 24 frames; a 4-frame clip every 2nd frame spans 7
    # the lists: the usable videos with their labels, relative to the root (paths with spaces and brackets)
    for split in ("train", "val"):
        lines = (lists / f"{split}.txt").read_text().splitlines()
        want = {p: v for p, v in kinetics.expected[(1, split)].items() if p not in kinetics.corrupt[split]}
        assert {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in lines} == want
    assert (lists / "classes.txt").read_text().splitlines() == sorted(official_trees.KINETICS_CLASSES)


def test_parallel_workers_agree_and_too_short_is_listed(kinetics, tmp_path, capsys):
    report_path = tmp_path / "report.json"
    assert (
        _check(
            "kinetics",
            kinetics.root,
            "--workers",
            "2",
            "--split",
            "train",
            "--num-frames",
            "16",
            "--backend",
            "pyav",
            "--report",
            str(report_path),
        )
        == 0
    )
    report = json.loads(report_path.read_text())
    assert set(report) == {"train"}
    assert report["train"]["undecodable"] == kinetics.corrupt["train"]
    assert report["train"]["num_too_short"] == 8  # 16 frames every 2nd span 31 > 24: usable, repeated frames


def test_a_split_without_a_usable_video_exits_2_with_one_line(tmp_path, cache, capsys):
    tree = official_trees.ssv2(tmp_path, cache)
    for rel in tree.expected[(1, "val")]:
        (tmp_path / rel).write_bytes(b"not a video")
    assert _check("ssv2", tmp_path, "--workers", "0") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vitzoo data check: error: no usable video in split 'val' (6 listed, 0 missing, 6 undecodable)"]


def test_bad_annotations_and_arguments_exit_2(tmp_path, cache, capsys):
    official_trees.ucf101(tmp_path, cache)
    assert _check("ucf101", tmp_path, "--fold", "5") == 2
    assert "data.fold must be 1..3" in capsys.readouterr().err
    assert main(["data", "check", "--root", str(tmp_path)]) == 2
    assert "--layout and --root" in capsys.readouterr().err


def test_rawframes_and_list_layouts_are_checked(tmp_path, capsys):
    official_trees.rawframes(tmp_path)
    (tmp_path / "rawframes" / "val_vid2" / "img_00014.jpg").unlink()  # the list says 14 frames
    lists = tmp_path / "lists"
    assert _check("rawframes", tmp_path, "--workers", "0", "--write-list", str(lists)) == 0
    assert "val: 3 listed, 2 usable, 0 missing, 1 undecodable" in capsys.readouterr().out
    assert (lists / "val.txt").read_text() == "rawframes/val_vid0 20 0\nrawframes/val_vid1 9 1\n"
    assert not (lists / "classes.txt").exists()
