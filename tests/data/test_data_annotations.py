"""Annotation lists, class-name files and root confinement."""

from __future__ import annotations

import os

import pytest

from vitzoo.data import parse_annotation_file, read_class_names, resolve_in_root


def _write(tmp_path, text, name="list.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("sep", [" ", ",", "\t", "  ", " , ", "\t\t"])
def test_separators(tmp_path, sep):
    ann = _write(tmp_path, f"a/x.mp4{sep}3\nb/y.mp4{sep}0\n")
    assert parse_annotation_file(ann, root=tmp_path) == [(tmp_path / "a/x.mp4", 3), (tmp_path / "b/y.mp4", 0)]


def test_comments_blank_lines_and_spaces_in_paths(tmp_path):
    text = "# header comment\n\n  a/with space.mp4 1  \n\t\n# another\nb/c,d.mp4\t2\nz.mp4,0\r\n"
    samples = parse_annotation_file(_write(tmp_path, text), root=tmp_path)
    assert samples == [
        (tmp_path / "a/with space.mp4", 1),
        (tmp_path / "b/c,d.mp4", 2),
        (tmp_path / "z.mp4", 0),
    ]


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("a.mp4 cat", "not an integer"),
        ("a.mp4 -1", "out of range"),
        ("a.mp4 1.5", "not an integer"),
        ("a.mp4", "expected"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, line, match):
    ann = _write(tmp_path, f"ok.mp4 0\n{line}\n")
    with pytest.raises(ValueError, match=match) as info:
        parse_annotation_file(ann, root=tmp_path)
    assert f"{ann}:2" in str(info.value)


def test_empty_annotation_file(tmp_path):
    with pytest.raises(ValueError, match="no samples"):
        parse_annotation_file(_write(tmp_path, "# nothing\n\n"), root=tmp_path)


def test_class_names_as_labels_and_range_check(tmp_path):
    classes = ["left", "right", "up"]
    ann = _write(tmp_path, "a.mp4 right\nb.mp4 2\n")
    assert [label for _, label in parse_annotation_file(ann, root=tmp_path, classes=classes)] == [1, 2]
    with pytest.raises(ValueError, match="out of range"):
        parse_annotation_file(_write(tmp_path, "a.mp4 3\n", "l2.txt"), root=tmp_path, classes=classes)
    with pytest.raises(ValueError, match="not an integer or a class name"):
        parse_annotation_file(_write(tmp_path, "a.mp4 down\n", "l3.txt"), root=tmp_path, classes=classes)


def test_read_class_names(tmp_path):
    assert read_class_names(_write(tmp_path, "# classes\ncat\n\ndog house\n", "c.txt")) == [
        "cat",
        "dog house",
    ]
    with pytest.raises(ValueError, match="repeats"):
        read_class_names(_write(tmp_path, "cat\ncat\n", "d.txt"))
    with pytest.raises(ValueError, match="no classes"):
        read_class_names(_write(tmp_path, "\n", "e.txt"))


@pytest.mark.parametrize("escape", ["../x.mp4", "a/../../x.mp4", "a/../../root2/x.mp4", "/etc/passwd", ".."])
def test_escapes_are_rejected(tmp_path, escape):
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(ValueError, match="outside the dataset root"):
        resolve_in_root(root, escape)
    ann = _write(tmp_path, f"ok.mp4 0\n{escape} 1\n")
    with pytest.raises(ValueError, match=r"list\.txt:2.*outside"):
        parse_annotation_file(ann, root=root)


def test_paths_inside_root_are_accepted(tmp_path):
    root = tmp_path / "root"
    assert resolve_in_root(root, "a/../b/./c.mp4") == root / "b/c.mp4"
    assert resolve_in_root(root, root / "d.mp4") == root / "d.mp4"  # absolute but inside
    assert resolve_in_root(str(root) + "/", "e.mp4") == root / "e.mp4"
    with pytest.raises(ValueError):
        resolve_in_root(root, str(root) + "2/f.mp4")  # sibling with a common prefix is outside


def test_relative_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_in_root("data", "x.mp4") == tmp_path / "data" / "x.mp4"
    assert os.path.isabs(resolve_in_root("data", "x.mp4"))
