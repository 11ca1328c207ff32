"""Class names and evaluation sampling travel with the model: ``vitzoo train`` records them in every checkpoint,
``save_pretrained`` in its folder and weights, and ``vitzoo predict`` reads them back."""

from __future__ import annotations

import json

import vitzoo
from tests.helpers import REPO_ROOT
from tests.helpers.motion_videos import MOTION_WEIGHTS
from vitzoo.checkpoints.io import LABELS_KEY, PREPROCESS_KEY, read_metadata
from vitzoo.cli.main import main
from vitzoo.inference import open_model

DIRECTIONS = ["left", "right", "up", "down"]


def test_the_shipped_motion_weights_carry_their_names_and_the_demo_recipes_views():
    model = open_model(MOTION_WEIGHTS)
    assert model.labels == DIRECTIONS
    spec = model.spec
    assert (spec.sampler, spec.frame_interval, spec.eval_clips, spec.eval_crops) == ("dense", 2.0, 2, 3)
    assert open_model(MOTION_WEIGHTS.stem).labels == DIRECTIONS  # a shipped weight's name works too


def test_save_pretrained_labels_round_trip_through_the_folder_and_its_weights(tmp_path):
    model = vitzoo.load(MOTION_WEIGHTS)
    folder = vitzoo.save_pretrained(model, tmp_path / "saved", labels=["W", "E", "N", "S"])
    assert open_model(folder).labels == ["W", "E", "N", "S"]
    assert open_model(folder / "model.safetensors").labels == ["W", "E", "N", "S"]
    vitzoo.save(model, tmp_path / "bare.safetensors")  # no names given: none recorded
    assert open_model(tmp_path / "bare.safetensors").labels is None


def test_vitzoo_train_records_class_names_and_sampling_in_every_checkpoint(tmp_path):
    from vitzoo.data import make_motion_dataset

    make_motion_dataset(tmp_path / "data", num_train=4, num_val=4, num_frames=12, size=32, progress=False)
    overrides = [f"data.root={tmp_path / 'data'}", f"output_dir={tmp_path / 'run'}", "train.batch_size=4",
                 "train.num_workers=0", "train.progress=false", "train.epochs=1", "data.eval_clips=2"]  # fmt: skip
    recipe = REPO_ROOT / "configs" / "vivit_fact_enc_nano_motion.yaml"
    assert main(["train", "--config", str(recipe), *[a for o in overrides for a in ("--set", o)]]) == 0
    files = sorted((tmp_path / "run" / "checkpoints").glob("*.safetensors"))
    assert any(f.name == "best.safetensors" for f in files) and len(files) >= 2
    for path in files:
        meta = read_metadata(path)
        assert json.loads(meta[LABELS_KEY]) == DIRECTIONS, path
        assert json.loads(meta[PREPROCESS_KEY])["eval_clips"] == 2, path
    best = open_model(tmp_path / "run" / "checkpoints" / "best.safetensors")
    assert best.labels == DIRECTIONS and best.spec.eval_clips == 2
