"""Which files ``vitzoo predict INPUT...`` reads: files, folders (recursive), lists of paths."""

from __future__ import annotations

from pathlib import Path

from vitzoo.inference.inputs import expand_inputs


def test_folders_are_searched_recursively_for_media_and_lists_are_read(tmp_path):
    for name in ("b.mp4", "sub/a.mkv", "sub/deeper/c.png", "notes.md", "sub/x.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert expand_inputs(tmp_path) == [tmp_path / p for p in ("b.mp4", "sub/a.mkv", "sub/deeper/c.png")]
    listing = tmp_path / "inputs.txt"
    listing.write_text("# videos\nb.mp4\n\n" + str(tmp_path / "sub/a.mkv") + "\nmissing.mp4\n")
    assert expand_inputs([listing, tmp_path / "gone.avi"]) == [
        tmp_path / "b.mp4",  # relative to the list's folder
        tmp_path / "sub/a.mkv",
        Path("missing.mp4"),  # kept: its record will say it is not found
        tmp_path / "gone.avi",
    ]
