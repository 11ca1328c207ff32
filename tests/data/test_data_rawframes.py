"""Frame folders (``rawframes``): 1-based file numbering, frame order, the same samplers as videos."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import official_trees
from vitzoo.data import DataSpec, DenseSampler, SegmentSampler, read_frame_index
from vitzoo.data.errors import VideoDecodeError
from vitzoo.data.frames import FrameFolderDataset, read_jpeg_frames
from vitzoo.data.recipe import split_dataset


def _indices(clip):  # (C, T, H, W) uint8 -> the index every frame encodes
    return [read_frame_index(clip[:, t], layout="CHW") for t in range(clip.shape[1])]


@pytest.mark.parametrize("sampler", [SegmentSampler(num_segments=5), DenseSampler(num_frames=4, frame_interval=2)])
def test_frames_come_in_sampler_order_from_one_based_files(tmp_path, sampler):
    official_trees.rawframes(tmp_path)
    spec = DataSpec(root=str(tmp_path), layout="rawframes", train="train.txt", val="val.txt")
    dataset = split_dataset(spec, spec.val, sampler=sampler, transform=None)
    assert isinstance(dataset, FrameFolderDataset)
    for i, count in enumerate((20, 9, 14)):
        clip, label = dataset[i]
        expected = sampler(count, np.random.default_rng(0))[0].tolist()
        assert _indices(clip) == expected and label == i % 2


def test_training_sampling_is_random_but_seeded(tmp_path):
    official_trees.rawframes(tmp_path)
    spec = DataSpec(root=str(tmp_path), layout="rawframes", train="train.txt", val="val.txt")
    dataset = split_dataset(spec, spec.train, sampler=SegmentSampler(num_segments=4, train=True), transform=None)
    a, b = dataset[(0, 7)][0], dataset[(0, 7)][0]
    assert _indices(a) == _indices(b)
    assert _indices(a) == sorted(_indices(a)) and max(_indices(a)) < 20


def test_repeated_indices_decode_once_and_repeat(tmp_path):
    official_trees.rawframes(tmp_path)
    frames = read_jpeg_frames(tmp_path / "rawframes/train_vid1", np.array([0, 0, 8, 3]))
    assert [read_frame_index(f, layout="CHW") for f in frames] == [0, 0, 8, 3]


def test_a_missing_frame_is_a_decode_error(tmp_path):
    official_trees.rawframes(tmp_path)
    (tmp_path / "rawframes/val_vid0/img_00011.jpg").unlink()
    spec = DataSpec(root=str(tmp_path), layout="rawframes", train="train.txt", val="val.txt")
    dataset = split_dataset(spec, spec.val, sampler=SegmentSampler(num_segments=20), transform=None)
    with pytest.raises(VideoDecodeError, match="img_00011.jpg"):
        dataset[0]


def test_decode_short_side_resizes(tmp_path):
    official_trees.rawframes(tmp_path)
    spec = DataSpec(root=str(tmp_path), layout="rawframes", train="train.txt", val="val.txt", decode_short_side=16)
    dataset = split_dataset(spec, spec.val, sampler=SegmentSampler(num_segments=3), transform=None)
    assert dataset[0][0].shape == (3, 3, 16, 16)
