"""Recipes -> datasets: clip shapes follow the model, both layouts, views per validation video, class checks."""

from __future__ import annotations

import shutil

import pytest

from vitzoo.train.config import DataSpec, ModelSpec, RunConfig, TrainConfig
from vitzoo.train.recipe import build_datasets, build_model, train_from_config


@pytest.fixture(scope="module")
def motion(tmp_path_factory):
    from vitzoo.data import make_motion_dataset

    root = tmp_path_factory.mktemp("motion")
    return make_motion_dataset(root, num_train=4, num_val=4, num_frames=12, size=32, progress=False)


@pytest.mark.parametrize(("clips", "crops", "sampler"), [(1, 1, "dense"), (2, 3, "segment")])
def test_list_layout_shapes_follow_the_model(motion, clips, crops, sampler):
    model = build_model(ModelSpec(name="vivit_joint_nano_8x2", num_classes=4))
    spec = DataSpec(root=str(motion.root), classes="classes.txt", eval_clips=clips, eval_crops=crops, sampler=sampler)
    train, val = build_datasets(spec, model)
    assert len(train) == len(val) == 4 and train.classes == ["left", "right", "up", "down"]
    clip, label = train[0]
    assert tuple(clip.shape) == model.input_shape and 0 <= label < 4
    views, _ = val[0]
    assert tuple(views.shape) == (clips * crops, *model.input_shape)


def test_folders_layout(motion, tmp_path):
    lines = motion.train_list.read_text().splitlines()
    for line in lines:
        path, label = line.rsplit(" ", 1)
        target = tmp_path / "train" / motion.classes[int(label)]
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(motion.root / path, target)
    model = build_model(ModelSpec(name="vivit_fact_enc_nano_8x2", num_classes=4))
    train, val = build_datasets(DataSpec(root=str(tmp_path), layout="folders", train="train", val=None), model)
    assert val is None and len(train) == 4 and train.classes == sorted(motion.classes)
    assert tuple(train[1][0].shape) == model.input_shape


def test_class_count_must_cover_the_dataset(motion, tmp_path):
    run = RunConfig(
        model=ModelSpec(name="vivit_joint_nano_8x2", num_classes=2),
        data=DataSpec(root=str(motion.root), classes="classes.txt"),
        train=TrainConfig(epochs=1, batch_size=2, progress=False),
        output_dir=str(tmp_path),
    )
    with pytest.raises(ValueError, match="set model.num_classes to 4"):
        train_from_config(run)
