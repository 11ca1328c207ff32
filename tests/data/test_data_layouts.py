"""The official layouts (ucf101, hmdb51, kinetics, ssv2, rawframes) read fabricated trees written in the official
formats: every sample's label against the tree's ground truth, split membership per fold, missing videos."""

from __future__ import annotations

import logging

import pytest

from tests.helpers import official_trees
from vitzoo.data import DataSpec
from vitzoo.data.errors import DataConfigError
from vitzoo.data.layouts import LAYOUTS
from vitzoo.data.recipe import dataset_num_classes, read_layout_split, split_dataset
from vitzoo.data.sampling import SegmentSampler
from vitzoo.schema import ConfigError


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("videos")


def _read(root, layout, split, fold=1, **extra):
    found = read_layout_split(DataSpec(root=str(root), layout=layout, fold=fold, **extra), split)
    return {str(p.relative_to(root)): label for p, label in found.samples}, found


def test_every_official_layout_is_registered():
    assert {"ucf101", "hmdb51", "kinetics", "ssv2", "rawframes"} <= set(LAYOUTS.names())


@pytest.mark.parametrize("fold", [1, 2, 3])
def test_ucf101_labels_and_folds(tmp_path, cache, fold):
    tree = official_trees.ucf101(tmp_path, cache)
    for split in ("train", "val"):
        got, found = _read(tmp_path, "ucf101", split, fold)
        assert got == tree.expected[(fold, split)]
        assert found.classes == tree.classes and found.missing == []
    train, _ = _read(tmp_path, "ucf101", "train", fold)
    val, _ = _read(tmp_path, "ucf101", "val", fold)
    assert not set(train) & set(val)
    assert all(f"_g{official_trees.UCF_TEST_GROUP[fold]:02d}_" in p for p in val)


def test_ucf101_label_disagreeing_with_its_folder_is_an_error(tmp_path, cache):
    official_trees.ucf101(tmp_path, cache)
    lists = tmp_path / "ucfTrainTestlist" / "trainlist01.txt"
    lists.write_bytes(lists.read_bytes().replace(b".avi 1\r\n", b".avi 2\r\n", 1))
    with pytest.raises(DataConfigError, match=r"trainlist01.txt:1: label 2 is 'Archery'"):
        _read(tmp_path, "ucf101", "train")


@pytest.mark.parametrize("fold", [1, 2, 3])
def test_hmdb51_codes_per_fold(tmp_path, cache, fold):
    tree = official_trees.hmdb51(tmp_path, cache)
    for split in ("train", "val"):
        got, found = _read(tmp_path, "hmdb51", split, fold)
        assert got == tree.expected[(fold, split)]
        assert found.classes == sorted(official_trees.HMDB_CLASSES)
    everything = {**_read(tmp_path, "hmdb51", "train", fold)[0], **_read(tmp_path, "hmdb51", "val", fold)[0]}
    assert not any(p.endswith("_goo_3.avi") for p in everything)  # marked 0: in neither split


def test_kinetics_labels_missing_and_classes(tmp_path, cache, caplog):
    tree = official_trees.kinetics(tmp_path, cache)
    with caplog.at_level(logging.WARNING):
        val, found = _read(tmp_path, "kinetics", "val")
    assert val == tree.expected[(1, "val")]
    assert found.missing == tree.missing["val"] and len(found.missing) == 1
    assert found.classes == sorted(official_trees.KINETICS_CLASSES)
    warnings = [r for r in caplog.records if "missing" in r.getMessage()]
    assert len(warnings) == 1 and "1 of 6" in warnings[0].getMessage()
    train, found = _read(tmp_path, "kinetics", "train")
    assert train == tree.expected[(1, "train")]  # the corrupt file is listed: only decoding finds it
    assert found.missing == []


def test_kinetics_flat_train_folder_and_validate_csv(tmp_path, cache):
    tree = official_trees.kinetics(tmp_path, cache)
    for path in list((tmp_path / "train").rglob("*.mp4")):
        path.rename(tmp_path / "train" / path.name)
    (tmp_path / "annotations" / "val.csv").rename(tmp_path / "annotations" / "validate.csv")
    train, _ = _read(tmp_path, "kinetics", "train")
    assert {p.split("/")[-1]: v for p, v in train.items()} == {
        p.split("/")[-1]: v for p, v in tree.expected[(1, "train")].items()
    }
    assert _read(tmp_path, "kinetics", "val")[0] == tree.expected[(1, "val")]


@pytest.mark.parametrize("long_names", [False, True])
def test_ssv2_template_brackets(tmp_path, cache, long_names):
    tree = official_trees.ssv2(tmp_path, cache, long_names=long_names)
    for split in ("train", "val"):
        got, found = _read(tmp_path, "ssv2", split)
        assert got == tree.expected[(1, split)]
        assert found.classes == tree.classes


def test_rawframes_lists(tmp_path):
    tree = official_trees.rawframes(tmp_path)
    for split, file in (("train", "train.txt"), ("val", "val.txt")):
        got, found = _read(tmp_path, "rawframes", file, train="train.txt", val="val.txt")
        assert got == tree.expected[(1, split)]
        assert found.num_frames == [20, 9, 14]


def test_missing_everything_and_bad_fold_are_one_line_errors(tmp_path, cache):
    official_trees.ucf101(tmp_path, cache)
    with pytest.raises(ConfigError, match="data.fold must be 1..3"):
        DataSpec(root=str(tmp_path), layout="ucf101", fold=4).validate()
    with pytest.raises(ConfigError, match="unknown layout 'ucf'"):
        DataSpec(root=str(tmp_path), layout="ucf").validate()
    with pytest.raises(DataConfigError, match="none of the 9 listed videos exists"):
        _read(tmp_path / "UCF-101", "ucf101", "train", annotations=str(tmp_path / "ucfTrainTestlist"))
    with pytest.raises(DataConfigError, match="annotation folder .* does not exist"):
        _read(tmp_path, "hmdb51", "train")


def test_datasets_carry_the_classes_and_num_classes(tmp_path, cache):
    official_trees.hmdb51(tmp_path, cache)
    spec = DataSpec(root=str(tmp_path), layout="hmdb51", fold=2)
    dataset = split_dataset(spec, spec.val, sampler=SegmentSampler(num_segments=4), transform=None)
    clip, label = dataset[0]
    assert clip.shape == (3, 4, official_trees.SIZE, official_trees.SIZE) and label == 0
    assert dataset.classes == official_trees.HMDB_CLASSES
    assert dataset_num_classes(spec) == 3
