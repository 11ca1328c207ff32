"""The methods as recipe tasks: options, views and kNN datasets from a recipe, ``vitzoo pretrain`` / ``knn`` /
``linear-probe`` end to end on a tiny real video dataset, fine-tuning from the self-supervised checkpoint, and an
image recipe."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
import yaml
from torchvision.transforms import v2

import vitzoo
from tests.helpers.images import write_image_folders
from vitzoo.cli.main import main
from vitzoo.schema import ConfigError
from vitzoo.ssl.data import ssl_datasets, training_sampler
from vitzoo.ssl.methods import MASKED, METHODS
from vitzoo.ssl.options import ViewOptions
from vitzoo.ssl.temporal import CVRLSampler
from vitzoo.train import get_task, load_run_config
from vitzoo.train.recipe import build_model
from vitzoo.train.tasks import task_names

NANO = "vivit_fact_enc_nano_8x2"  # (3, 4, 32, 32), width 64
RECIPE = Path(__file__).parents[2] / "configs" / "simclr_vivit_joint_micro_motion.yaml"
SMALL = {
    "simclr": {"proj_hidden_dim": 16, "proj_out_dim": 8},
    "supcon": {"proj_hidden_dim": 16, "proj_out_dim": 8},
    "byol": {"proj_hidden_dim": 16, "proj_out_dim": 8, "pred_hidden_dim": 16},
    "simsiam": {"proj_hidden_dim": 16, "proj_out_dim": 8, "pred_hidden_dim": 4},
    "vicreg": {"expander_dim": 16},
}


@pytest.fixture(scope="module")
def motion(tmp_path_factory) -> Path:
    """8 training + 4 validation mp4 files (12 frames, 32 px)."""
    from vitzoo.data import make_motion_dataset

    root = tmp_path_factory.mktemp("motion")
    make_motion_dataset(root, num_train=8, num_val=4, num_frames=12, size=32, progress=False)
    return root


def _sets(motion: Path, out: Path, method: str = "simclr", *extra: str) -> list[str]:
    """``--set`` arguments that shrink the micro SimCLR recipe to the nano model, the tiny dataset, one short epoch
    and method ``method`` (with small heads)."""
    overrides = [
        f"model.name={NANO}", f"data.root={motion}", f"output_dir={out}", "data.frame_interval=1",
        f"task.name={method}", "train.batch_size=4", "train.epochs=1", "train.num_workers=0", "train.progress=false",
        "train.eval_every=1", "train.log_every=1", "train.plot=false",
    ]  # fmt: skip
    if method != "simclr":  # the recipe's SimCLR options are not all options of the other methods
        overrides.append("task.options={}")
    overrides += ["task.options.knn_k=3", *(f"task.options.{k}={v}" for k, v in SMALL[method].items()), *extra]
    return [a for o in overrides for a in ("--set", o)]


def _run(motion: Path, out: Path, method: str = "simclr", *extra: str):
    return load_run_config(RECIPE, [a for a in _sets(motion, out, method, *extra) if a != "--set"])


def test_every_method_is_a_registered_task_without_head():
    assert set(METHODS) <= set(task_names()) and "distill" in task_names()
    for name in set(METHODS) - set(MASKED):  # the masked autoencoders take crops, not views (test_ssl_masked.py)
        entry = get_task(name)
        assert not entry.needs_head and entry.datasets is ssl_datasets
        options = entry.parse_options({"views": {"num_views": 3, "blur_p": [1.0, 0.1, 0.5]}, "knn_memory": 10})
        assert isinstance(options, METHODS[name][1]) and options.views.per_view("blur_p", 1) == 0.1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"views": {"num_view": 3}}, r"task\.options\.views\.num_view.*did you mean task\.options\.views\.num_views"),
        ({"views": {"blur_p": [1.0, 0.1, 0.5]}}, r"views\.blur_p has 3 values for 2 views"),
        ({"views": {"solarize_p": [1.5]}}, r"views\.solarize_p must be in \[0, 1\], got 1\.5"),
        ({"views": {"blur_p": [0.5, -0.1]}}, r"views\.blur_p\[1\] must be in \[0, 1\], got -0\.1"),
        (
            {"views": {"scale": [0.5, 0.2]}},
            r"views\.scale=\[0\.5, 0\.2\] must be \(min, max\) with .* <= 1 \(",
        ),
        ({"views": {"ratio": [0, 2]}}, r"views\.ratio=\[0\.0, 2\.0\] must be \(min, max\) with 0 < min <= max \("),
        ({"views": {"jitter": [0.4, -1, 0.4, 0.1]}}, r"views\.jitter\[1\] must be >= 0, got -1\.0"),
        ({"views": {"num_views": 0}}, r"views\.num_views must be >= 1, got 0"),
        ({"views": {"temporal": "cvlr"}}, r"did you mean cvrl"),
        ({"temperature": 0}, r"temperature must be > 0"),
        ({"knn_memory": 0}, r"knn_memory must be > 0"),
    ],
)
def test_bad_options_raise_one_line(options, message):
    with pytest.raises(ConfigError, match=message):
        get_task("simclr").parse_options(options)


def test_a_method_refuses_a_classifier_head(motion, tmp_path):
    run = _run(motion, tmp_path / "run", "simclr", "model.num_classes=4")
    model = build_model(run.model)
    with pytest.raises(ConfigError, match=r"model.num_classes: 0"):
        get_task("simclr").build(run, model, ssl_datasets(run, model))


def test_views_from_a_recipe(motion, tmp_path):
    run = _run(motion, tmp_path / "run", "simclr", "task.options.knn_memory=5")
    model = build_model(run.model)
    data = ssl_datasets(run, model)
    views, label = data.train[(0, 123)]
    assert views.shape == (2, 3, 4, 32, 32) and views.dtype == torch.float32 and 0 <= label < 4
    assert not torch.allclose(views[0], views[1])  # each view its own clip and augmentation
    again, _ = data.train[(0, 123)]
    assert torch.equal(views, again)  # a function of (index, seed)
    bank, queries = data.val
    assert len(bank) == 5 and len(queries) == 4  # knn_memory samples of the 8 training videos
    clip, _ = queries[0]
    assert clip.shape == (3, 4, 32, 32)
    # data.hflip: false leaves the flip out of every view's pipeline; true puts it in
    flips = [isinstance(t, v2.RandomHorizontalFlip) for t in data.train.transform[0].pipeline.transforms]
    assert not any(flips)
    flipped = ssl_datasets(_run(motion, tmp_path / "run2", "simclr", "data.hflip=true"), model)
    assert any(isinstance(t, v2.RandomHorizontalFlip) for t in flipped.train.transform[1].pipeline.transforms)


def test_temporal_views_choose_the_sampler(motion, tmp_path):
    spec = _run(motion, tmp_path / "run").data
    cvrl = training_sampler(spec, 4, ViewOptions(num_views=3, max_gap=5))
    assert isinstance(cvrl, CVRLSampler) and cvrl.num_clips == 3 and cvrl.max_gap == 5
    shared = training_sampler(spec, 4, ViewOptions(temporal="shared"))
    assert shared.num_clips == 1 and shared.train
    spec.sampler = "segment"
    assert training_sampler(spec, 4, ViewOptions()).num_clips == 2


@pytest.fixture(scope="module")
def pretrained(motion, tmp_path_factory):
    """``vitzoo pretrain`` (SimCLR) stopped after one update, then resumed to the end of its epoch."""
    out = tmp_path_factory.mktemp("simclr")
    first = main(["pretrain", "--config", str(RECIPE), *_sets(motion, out), "--set", "train.max_steps=1"])
    second = main(["pretrain", "--config", str(RECIPE), *_sets(motion, out), "--resume"])
    return out, (first, second)


def test_pretrain_trains_logs_collapse_indicators_and_resumes(pretrained):
    out, status = pretrained
    assert status == (0, 0)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2]  # 8 videos / 4 per step
    epoch = next(r for r in records if r["kind"] == "epoch")
    assert 0 < epoch["embedding_std"] < 1 and 0 < epoch["feature_std"] < 1  # collapse indicators, epoch means
    val = next(r for r in records if r["kind"] == "val")
    assert 0 <= val["knn_top1"] <= 1 and val["num_samples"] == 4
    best = vitzoo.load(out / "checkpoints" / "best.safetensors")
    assert best.cfg.num_classes == 0  # the backbone alone: heads stay in the training state
    assert yaml.safe_load((out / "config.yaml").read_text())["task"]["name"] == "simclr"


def test_pretrain_refuses_a_supervised_recipe(motion, tmp_path, capsys):
    recipe = Path(__file__).parents[2] / "configs" / "vivit_fact_enc_nano_motion.yaml"
    status = main(["pretrain", "--config", str(recipe), "--set", f"data.root={motion}"])
    assert status == 2 and "not self-supervised" in capsys.readouterr().err


def test_knn_and_linear_probe_commands(motion, pretrained, capsys):
    out, _ = pretrained
    sets = _sets(motion, out)
    assert main(["knn", "--config", str(RECIPE), *sets, "--k", "3"]) == 0
    assert "kNN (k=3, T=0.07): top-1" in capsys.readouterr().out
    report = json.loads((out / "eval" / "best" / "knn.json").read_text())
    assert report["num_samples"] == 4 and report["k"] == 3
    assert main(["linear-probe", "--config", str(RECIPE), *sets, "--random-init", "--epochs", "5"]) == 0
    assert "linear probe: top-1" in capsys.readouterr().out
    probe = json.loads((out / "eval" / "random_init" / "linear_probe.json").read_text())
    assert probe["num_samples"] == 4 and 0 <= probe["train_top1"] <= 1


def test_a_classifier_checkpoint_is_evaluated_on_its_features(motion, tmp_path, capsys):
    classifier = vitzoo.save(vitzoo.create(NANO, num_classes=4), tmp_path / "clf.safetensors")
    args = ["knn", "--config", str(RECIPE), *_sets(motion, tmp_path / "run"), "--checkpoint", str(classifier)]
    assert main(args) == 0
    assert "top-1" in capsys.readouterr().out


def test_fine_tuning_starts_from_the_ssl_backbone_with_a_fresh_head(pretrained, caplog):
    out, _ = pretrained
    best = out / "checkpoints" / "best.safetensors"
    backbone = vitzoo.load(best)
    with caplog.at_level(logging.INFO, logger="vitzoo.checkpoints.load"):
        classifier = vitzoo.create(NANO, num_classes=4, pretrained=str(best))
    assert "no classifier head" in caplog.text and "4-class head starts fresh" in caplog.text
    theirs, ours = backbone.state_dict(), classifier.state_dict()
    assert all(torch.equal(v, ours[k]) for k, v in theirs.items())  # every backbone tensor loaded
    assert ours["head.weight"].shape == (4, 64) and set(ours) - set(theirs) == {"head.weight", "head.bias"}


@pytest.mark.parametrize("method", ["byol", "vicreg"])
def test_methods_without_negatives_train_from_a_recipe(motion, tmp_path, method):
    from vitzoo.train.recipe import train_from_config

    result = train_from_config(_run(motion, tmp_path / method, method))
    assert result.completed and result.monitor == "knn_top1" and result.best_checkpoint is not None


def test_an_image_recipe_trains_on_an_image_folder(tmp_path):
    from vitzoo.train.recipe import train_from_config

    write_image_folders(tmp_path / "images")
    recipe = {
        "model": {"name": "vit_nano_patch8_32", "num_classes": 0},
        "data": {"root": str(tmp_path / "images"), "layout": "folders", "train": "train", "val": "val"},
        "task": {"name": "simclr", "options": {**SMALL["simclr"], "knn_k": 3}},
        "train": {"epochs": 1, "batch_size": 4, "progress": False, "plot": False, "num_workers": 0},
        "output_dir": str(tmp_path / "run"),
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    run = load_run_config(path)
    views, _ = ssl_datasets(run, build_model(run.model)).train[0]
    assert views.shape == (2, 3, 32, 32)
    result = train_from_config(run)
    assert result.step == 2 and result.validations[0]["num_samples"] == 4
    recipe["data"]["layout"] = "list"
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(ConfigError, match="set data.layout: folders"):
        train_from_config(load_run_config(path))
