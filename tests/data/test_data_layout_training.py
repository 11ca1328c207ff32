"""One epoch of a micro model from each official layout through ``vitzoo train --set data.layout=...``, with
``model.num_classes: null`` taken from the dataset; ``data check --write-list`` output trains identically."""

from __future__ import annotations

import json
import logging

import pytest
from safetensors.torch import load_file

from tests.helpers import REPO_ROOT, official_trees
from vitzoo.cli.main import main

RECIPE = REPO_ROOT / "configs" / "vivit_fact_enc_nano_motion.yaml"
TREES = {
    "ucf101": lambda root, cache: official_trees.ucf101(root, cache),
    "hmdb51": lambda root, cache: official_trees.hmdb51(root, cache),
    "kinetics": lambda root, cache: official_trees.kinetics(root, cache),
    "ssv2": lambda root, cache: official_trees.ssv2(root, cache),
    "rawframes": lambda root, cache: official_trees.rawframes(root),
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("videos")


def _train(root, out, *overrides):
    sets = [
        f"data.root={root}",
        f"output_dir={out}",
        "model.num_classes=null",
        "data.classes=null",
        "train.epochs=1",
        "train.batch_size=2",
        "train.num_workers=0",
        "train.progress=false",
        "train.eval_every=1",
        "train.log_every=1",
        "train.warmup_epochs=0",
        "data.eval_clips=1",
        *overrides,
    ]
    return main(["train", "--config", str(RECIPE), *[a for s in sets for a in ("--set", s)]])


def _records(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow  # 3-9 s each on 2 cores
@pytest.mark.parametrize("layout", ["ucf101", "hmdb51", "kinetics", "ssv2", "rawframes"])
def test_one_epoch_from_each_layout(tmp_path, cache, layout):
    tree = TREES[layout](tmp_path / "data", cache)
    extra = ["data.on_error=skip"] if layout == "kinetics" else []  # its fake has one corrupt download
    extra += ["data.train=train.txt", "data.val=val.txt"] if layout == "rawframes" else []
    assert _train(tree.root, tmp_path / "run", f"data.layout={layout}", *extra) == 0
    records = _records(tmp_path / "run")
    val = [r for r in records if r["kind"] == "val"]
    assert val and val[-1]["num_samples"] == len(tree.expected[(1, "val")])
    weights = load_file(tmp_path / "run" / "checkpoints" / "best.safetensors")
    head = next(v for k, v in weights.items() if k.endswith("head.weight"))
    assert head.shape[0] == len(tree.classes)  # num_classes: null -> the dataset's class count


def test_a_given_num_classes_that_does_not_fit_is_one_line(tmp_path, cache, capsys):
    tree = official_trees.hmdb51(tmp_path / "data", cache)
    assert _train(tree.root, tmp_path / "run", "data.layout=hmdb51", "model.num_classes=4") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has 3 classes (named) but the model has num_classes=4" in err[0]


def test_ssv2_with_a_flip_warns(tmp_path, cache, caplog):
    tree = official_trees.ssv2(tmp_path / "data", cache)
    with caplog.at_level(logging.WARNING):
        _train(tree.root, tmp_path / "run", "data.layout=ssv2", "data.hflip=true", "train.max_steps=1")
    assert any("data.hflip is on for layout 'ssv2'" in r.getMessage() for r in caplog.records)


@pytest.mark.slow  # two one-epoch runs
def test_write_list_trains_like_the_layout(tmp_path, cache):
    tree = official_trees.ucf101(tmp_path / "data", cache)
    lists = tmp_path / "lists"
    assert (
        main(
            [
                "data",
                "check",
                "--layout",
                "ucf101",
                "--root",
                str(tree.root),
                "--workers",
                "0",
                "--write-list",
                str(lists),
            ]
        )
        == 0
    )
    assert _train(tree.root, tmp_path / "a", "data.layout=ucf101") == 0
    assert (
        _train(
            tree.root,
            tmp_path / "b",
            "data.layout=list",
            f"data.train={lists}/train.txt",
            f"data.val={lists}/val.txt",
            f"data.classes={lists}/classes.txt",
        )
        == 0
    )
    a, b = _records(tmp_path / "a"), _records(tmp_path / "b")
    losses = [[r.get("loss") for r in rec if r["kind"] == "train"] for rec in (a, b)]
    assert losses[0] == losses[1] and len(losses[0]) == 4  # 9 clips, full batches of 2
    wa = load_file(tmp_path / "a" / "checkpoints" / "best.safetensors")
    wb = load_file(tmp_path / "b" / "checkpoints" / "best.safetensors")
    assert wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)
