"""``vitzoo predict``: one printed line and one JSON record per input, bad inputs reported, exit status 2 only when
nothing could be read or the checkpoint / arguments are bad (checked before decoding)."""

from __future__ import annotations

import json

import pytest

from tests.helpers.motion_videos import MOTION_WEIGHTS, write_direction_clips
from vitzoo.cli.main import main
from vitzoo.data.video import VideoReader


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return write_direction_clips(tmp_path_factory.mktemp("clips") / "nested")


def test_predict_prints_a_line_per_input_and_writes_jsonl_records(clips, tmp_path, capsys):
    folder = next(iter(clips)).parent.parent  # searched recursively
    (tmp_path / "broken.mp4").write_bytes(b"garbage")
    out = tmp_path / "predictions.jsonl"
    status = main(["predict", "--checkpoint", str(MOTION_WEIGHTS), str(folder), str(tmp_path / "broken.mp4"),
                   "--topk", "2", "--out", str(out), "--device", "cpu"])  # fmt: skip
    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(clips) + 1
    for line, (path, direction) in zip(lines, sorted(clips.items()), strict=False):
        assert line.startswith(f"{path}: {direction} ")
    assert lines[-1].startswith(f"{tmp_path / 'broken.mp4'}: error: ")
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["topk"][0]["label"] for r in records[:-1]] == [clips[p] for p in sorted(clips)]
    assert set(records[0]) == {"path", "topk", "windows", "segments"} and len(records[0]["topk"]) == 2
    assert set(records[0]["windows"][0]) == {"start", "end", "topk"}
    assert set(records[0]["segments"][0]) == {"start", "end", "label"}
    assert records[-1]["error"] and records[-1]["topk"] == []


def test_labels_file_and_a_list_of_paths(clips, tmp_path, capsys):
    (tmp_path / "names.txt").write_text("W\nE\nN\nS\n")
    listing = tmp_path / "inputs.txt"
    listing.write_text("".join(f"{p}\n" for p in sorted(clips)[:2]))
    names_file = str(tmp_path / "names.txt")
    assert main(["predict", "--checkpoint", str(MOTION_WEIGHTS), str(listing), "--labels", names_file]) == 0
    names = {"left": "W", "right": "E", "up": "N", "down": "S"}
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[1].split()[0] for line in lines] == [names[clips[p]] for p in sorted(clips)[:2]]


def test_no_readable_input_is_status_2(tmp_path, capsys):
    (tmp_path / "a.mp4").write_bytes(b"")
    assert main(["predict", "--checkpoint", str(MOTION_WEIGHTS), str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4")]) == 2
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2
    assert captured.err.strip().splitlines()[-1] == (
        "vitzoo predict: error: none of the 2 inputs could be read (see the lines above)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--checkpoint", "no_such_weights.safetensors"], "no weight file"),
        (["--checkpoint", str(MOTION_WEIGHTS), "--topk", "0"], "topk must be >= 1"),
        (["--checkpoint", str(MOTION_WEIGHTS), "--stride", "-1"], "stride must be > 0"),
        (["--checkpoint", str(MOTION_WEIGHTS), "--device", "cuda:7"], "--device='cuda:7'"),
        (["--checkpoint", str(MOTION_WEIGHTS), "--labels", "missing.txt"], "no labels file missing.txt"),
        (["--checkpoint", str(MOTION_WEIGHTS), "--out", "no/such/folder/p.jsonl"], "does not exist"),
    ],
)
def test_bad_checkpoint_or_arguments_are_one_line_status_2_before_decoding(clips, args, message, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("decoded a video before checking the arguments")

    monkeypatch.setattr(VideoReader, "open", refuse)
    assert main(["predict", *args, str(next(iter(clips)))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("vitzoo predict: error: ") and message in err[-1]
