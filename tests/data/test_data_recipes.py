"""Every dataset recipe of configs/ loads and checks a fabricated tree of its layout (``vitzoo data check
--config``) with its model's clip length."""

from __future__ import annotations

import json

import pytest

from tests.helpers import REPO_ROOT, official_trees
from vitzoo.api import model_config
from vitzoo.cli.main import main
from vitzoo.train.recipe import load_run_config

RECIPES = {
    "videomae_vit_base_ucf101.yaml": ("ucf101", official_trees.ucf101),
    "videomae_vit_base_hmdb51.yaml": ("hmdb51", official_trees.hmdb51),
    "videomae_vit_base_ssv2.yaml": ("ssv2", official_trees.ssv2),
    "vivit_fact_enc_base_kinetics400.yaml": ("kinetics", official_trees.kinetics),
    "mvitv2_small_kinetics400.yaml": ("kinetics", official_trees.kinetics),
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("videos")


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_checks_a_tree_of_its_layout(name, tmp_path, cache, capsys):
    layout, build = RECIPES[name]
    path = REPO_ROOT / "configs" / name
    run = load_run_config(path)
    assert run.data.layout == layout
    if layout == "ssv2":
        assert run.data.hflip is False and run.data.sampler == "segment"
        assert model_config(run.model.name, **run.model.options).num_frames == 16
    tree = build(tmp_path / "data", cache)
    report = tmp_path / "report.json"
    status = main(
        [
            "data",
            "check",
            "--config",
            str(path),
            "--set",
            f"data.root={tree.root}",
            "--workers",
            "0",
            "--report",
            str(report),
        ]
    )
    assert status == 0
    counts = json.loads(report.read_text())
    for split in ("train", "val"):
        usable = {p for p in tree.expected[(1, split)] if p not in tree.corrupt.get(split, [])}
        assert counts[split]["num_usable"] == len(usable)
        assert counts[split]["classes"] == tree.classes or layout == "kinetics"
