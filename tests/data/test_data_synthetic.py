"""Synthetic mp4 writing, frame-index videos and the motion dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vitzoo.data import (
    VideoReader,
    index_coded_frames,
    make_motion_dataset,
    motion_clip,
    parse_annotation_file,
    read_frame_index,
    write_video,
)


def test_write_video_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 256, (6, 1, 1, 3), dtype=np.uint8), 32, axis=1).repeat(48, axis=2)
    path = write_video(tmp_path / "sub" / "clip.mp4", torch.from_numpy(frames), 29.97)
    with VideoReader(path) as reader:
        assert (reader.num_frames, reader.frame_shape) == (6, (32, 48))
        assert reader.fps == pytest.approx(29.97, abs=0.01)
        decoded = reader.get(range(6)).numpy().astype(int)
    assert np.abs(decoded - frames).mean() < 4  # flat colours survive 4:2:0 + crf 18


@pytest.mark.parametrize(
    ("frames", "fps", "match"),
    [
        (np.zeros((2, 31, 32, 3), np.uint8), 25, "even"),
        (np.zeros((2, 32, 32, 3), np.float32), 25, "uint8"),
        (np.zeros((2, 32, 32), np.uint8), 25, "uint8"),
        (np.zeros((0, 32, 32, 3), np.uint8), 25, "zero frames"),
        (np.zeros((2, 32, 32, 3), np.uint8), 0, "fps"),
    ],
)
def test_write_video_validates(tmp_path, frames, fps, match):
    with pytest.raises(ValueError, match=match):
        write_video(tmp_path / "x.mp4", frames, fps)


def test_index_code_roundtrip_without_compression():
    frames = index_coded_frames(144, 24, 32)
    assert [read_frame_index(f) for f in frames] == list(range(144))
    assert read_frame_index(torch.from_numpy(frames[77]).permute(2, 0, 1), layout="CHW") == 77
    with pytest.raises(ValueError):
        index_coded_frames(145, 24, 32)


def _centroid(frame: np.ndarray) -> np.ndarray:
    """Circular (torus) centroid (x, y) of the bright disk."""
    size = frame.shape[0]
    ys, xs = np.nonzero(frame.mean(-1) > 150)
    angle = lambda v: np.angle(np.exp(2j * np.pi * v / size).mean()) * size / (2 * np.pi)
    return np.array([angle(xs), angle(ys)])


@pytest.mark.parametrize(
    ("direction", "sign"), [("right", (1, 0)), ("left", (-1, 0)), ("down", (0, 1)), ("up", (0, -1))]
)
def test_motion_clip_moves_in_its_direction(direction, sign):
    for seed in range(5):
        clip = motion_clip(direction, np.random.default_rng(seed), num_frames=8, size=64)
        assert clip.shape == (8, 64, 64, 3) and clip.dtype == np.uint8
        shift = _centroid(clip[-1]) - _centroid(clip[0])
        shift = (shift + 32) % 64 - 32  # torus difference, (dx, dy)
        along, across = (0, 1) if sign[0] else (1, 0)
        assert shift[along] * sum(sign) >= 7 * 1.5 - 1  # at least 1.5 px per frame the right way
        assert abs(shift[across]) < 1


@pytest.mark.parametrize("distractors", [0, 1, 3])
def test_single_frame_does_not_reveal_direction(distractors):
    """Same random draws, different direction: the first frame is identical (the start is uniform on a
    torus, so every later frame has the same distribution too)."""
    first = [
        motion_clip(d, np.random.default_rng(3), num_frames=4, shape="cross", distractors=distractors)[0]
        for d in ("left", "right", "up", "down")
    ]
    assert all(np.array_equal(first[0], f) for f in first[1:])


def _objects(clip: np.ndarray) -> dict[tuple, tuple[np.ndarray, float]]:
    """Per object colour: torus shift (dx, dy) from the first to the last frame and how fully the object fills
    its bounding box in the first frame (a square fills it). Objects are drawn in flat, distinct colours."""
    size, found = clip.shape[1], {}
    colours = {tuple(c) for c in clip[0][clip[0].min(-1) >= 170]}
    for colour in colours:
        masks = [np.all(clip[i] == colour, axis=-1) for i in (0, -1)]
        ys, xs = np.nonzero(masks[0])
        if len(ys) < 20 or np.ptp(xs) > size / 2 or np.ptp(ys) > size / 2:  # noise pixel, or wraps a border
            continue
        shift = _centroid(np.where(masks[1][..., None], 255, 0)) - _centroid(np.where(masks[0][..., None], 255, 0))
        fill = len(ys) / ((np.ptp(ys) + 1) * (np.ptp(xs) + 1))
        found[colour] = ((shift + size / 2) % size - size / 2, fill)
    return found


@pytest.mark.parametrize("direction", ["left", "right", "up", "down"])
def test_distractors_move_other_ways_and_only_the_shape_names_the_label(direction):
    """With 3 distractors every object moves its own way; the square (the labelled shape here) moves in
    ``direction``. Objects that overlap or wrap a border in the first frame are not measured."""
    unit = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
    squares = 0
    for seed in range(12):
        clip = motion_clip(
            direction, np.random.default_rng(seed), num_frames=8, size=64, shape="square", distractors=3, noise=0
        )
        moves = [(tuple(np.sign(np.round(shift / 10)).astype(int)), fill) for shift, fill in _objects(clip).values()]
        assert len({move for move, _ in moves}) == len(moves)  # no two objects move the same way
        for move, fill in moves:
            # only the square (the one object that fills its box) moves the label's way
            assert (move == unit[direction]) == (fill > 0.95)
            squares += fill > 0.95
    assert squares >= 3


def test_motion_clip_validates_shape_and_distractors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="shape"):
        motion_clip("left", rng, shape="star")
    with pytest.raises(ValueError, match="distractors"):
        motion_clip("left", rng, distractors=4)


def test_motion_dataset_layout_and_balance(motion):
    assert motion.classes == ["left", "right", "up", "down"]
    assert motion.classes_file.read_text().split() == motion.classes
    train = parse_annotation_file(motion.train_list, root=motion.root, classes=motion.classes)
    val = parse_annotation_file(motion.val_list, root=motion.root, classes=motion.classes)
    assert len(train) == 8 and len(val) == 4
    assert sorted(label for _, label in train) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert all(p.is_file() for p, _ in train + val)
    with VideoReader(train[0][0]) as reader:
        assert (reader.num_frames, reader.frame_shape) == (8, (32, 32))


def test_motion_dataset_is_deterministic(tmp_path):
    a = make_motion_dataset(tmp_path / "a", num_train=3, num_val=1, num_frames=4, size=32, seed=1, progress=False)
    b = make_motion_dataset(tmp_path / "b", num_train=3, num_val=1, num_frames=4, size=32, seed=1, progress=False)
    c = make_motion_dataset(tmp_path / "c", num_train=3, num_val=1, num_frames=4, size=32, seed=2, progress=False)
    assert a.train_list.read_text() == b.train_list.read_text()
    for name in ("train/000000.mp4", "train/000002.mp4", "val/000000.mp4"):
        assert (a.root / name).read_bytes() == (b.root / name).read_bytes()
    assert (a.root / "train/000000.mp4").read_bytes() != (c.root / "train/000000.mp4").read_bytes()


def test_motion_dataset_rejects_unknown_classes(tmp_path):
    with pytest.raises(ValueError):
        make_motion_dataset(tmp_path, num_train=1, num_val=1, classes=("left", "spin"))
