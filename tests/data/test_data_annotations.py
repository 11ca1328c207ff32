"""Annotation lists, class-name files and root confinement."""

from __future__ import annotations

import logging
import os

import pytest

from vitzoo.data import AnnotationError, DataConfigError, parse_annotation_file, read_class_names, resolve_in_root


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
        ("a.mp4 -1", "negative; labels are class indices >= 0"),
        ("a.mp4 1.5", "not an integer"),
        ("a.mp4", "expected"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, line, match):
    ann = _write(tmp_path, f"ok.mp4 0\n{line}\n")
    with pytest.raises(AnnotationError, match=match) as info:
        parse_annotation_file(ann, root=tmp_path)
    assert f"{ann}:2" in str(info.value)


@pytest.mark.parametrize("text", ["", "# nothing\n\n", "\ufeff\n"])
def test_empty_annotation_file(tmp_path, text):
    ann = _write(tmp_path, text)
    with pytest.raises(AnnotationError, match="no samples") as info:
        parse_annotation_file(ann, root=tmp_path)
    assert str(ann) in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, DataConfigError) and isinstance(info.value, ValueError)  # the CLI's one-line path


def test_byte_order_mark_is_not_part_of_the_first_path(tmp_path):
    ann = tmp_path / "bom.txt"
    ann.write_bytes("a/x.mp4 1\nb/y.mp4 0\n".encode("utf-8-sig"))
    assert parse_annotation_file(ann, root=tmp_path)[0] == (tmp_path / "a/x.mp4", 1)
    names = tmp_path / "classes.txt"
    names.write_bytes("cat\ndog\n".encode("utf-8-sig"))
    assert read_class_names(names) == ["cat", "dog"]
    labelled = tmp_path / "named.txt"
    labelled.write_bytes("a/x.mp4 cat\n".encode("utf-8-sig"))
    assert parse_annotation_file(labelled, root=tmp_path, classes=read_class_names(names)) == [
        (tmp_path / "a/x.mp4", 0)
    ]


def test_duplicate_lines_are_kept_with_one_warning(tmp_path, caplog):
    ann = _write(tmp_path, "a.mp4 0\nb.mp4 1\na.mp4 0\n# c\nb.mp4 1\na.mp4 0\nc.mp4 2\n")
    with caplog.at_level(logging.WARNING, logger="vitzoo.data.annotations"):
        samples = parse_annotation_file(ann, root=tmp_path)
    assert [p.name for p, _ in samples] == ["a.mp4", "b.mp4", "a.mp4", "b.mp4", "a.mp4", "c.mp4"]  # oversampling kept
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert str(ann) in message and "3 duplicate line(s)" in message
    assert "line 3 (= line 1), 5 (= line 2), 6 (= line 1)" in message


def test_no_warning_without_duplicates(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="vitzoo.data.annotations"):
        parse_annotation_file(_write(tmp_path, "a.mp4 0\nb.mp4 0\n"), root=tmp_path)
    assert not caplog.records


def test_video_listed_with_two_labels_warns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="vitzoo.data.annotations"):
        parse_annotation_file(_write(tmp_path, "a.mp4 0\nb.mp4 1\na.mp4 1\n"), root=tmp_path)
    assert len(caplog.records) == 1 and "line 3 (vs line 1)" in caplog.records[0].getMessage()


def test_label_out_of_range_names_line_and_valid_range(tmp_path):
    ann = _write(tmp_path, "a.mp4 0\nb.mp4 1\nc.mp4 3\n")
    with pytest.raises(AnnotationError) as info:
        parse_annotation_file(ann, root=tmp_path, classes=["x", "y", "z"])
    assert str(info.value) == f"{ann}:3: label 3 is out of range; valid labels are 0..2 (3 classes)"


@pytest.mark.parametrize("kind", ["missing", "directory", "latin-1"])
def test_unreadable_files_are_one_line_errors(tmp_path, kind):
    path = tmp_path / "list.txt"
    if kind == "directory":
        path.mkdir()
    elif kind == "latin-1":
        path.write_bytes("a.mp4 0\ncaf\u00e9.mp4 1\n".encode("latin-1"))
    with pytest.raises(AnnotationError) as info:
        parse_annotation_file(path, root=tmp_path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    if kind == "latin-1":
        assert f"{path}:2: not UTF-8" in str(info.value)
    with pytest.raises(AnnotationError):
        read_class_names(path)


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
    with pytest.raises(AnnotationError, match=r"d\.txt:3: repeats the class 'cat' \(first on line 1\)"):
        read_class_names(_write(tmp_path, "cat\n\ncat\n", "d.txt"))
    with pytest.raises(ValueError, match="no classes"):
        read_class_names(_write(tmp_path, "\n", "e.txt"))


@pytest.mark.parametrize("escape", ["../x.mp4", "a/../../x.mp4", "a/../../root2/x.mp4", "/etc/passwd", ".."])
def test_escapes_are_rejected(tmp_path, escape):
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(ValueError, match="outside the dataset root"):
        resolve_in_root(root, escape)
    ann = _write(tmp_path, f"ok.mp4 0\n{escape} 1\n")
    with pytest.raises(AnnotationError, match=r"list\.txt:2.*outside"):
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
