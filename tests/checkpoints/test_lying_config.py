"""A timm / transformers ``config.json`` that claims a model its weights are not (issue 25, item 6) is refused before
anything of the claimed size is built: the claim is compared with the weights' shapes, and the model is built on
the ``meta`` device only. The time and memory of a refusal are measured by ``benchmarks/bench_lying_config.py``;
here a generous sanity bound on the peak memory only (the old code allocated the claimed model: 5 GB and more)."""

from __future__ import annotations

import json
import resource
import sys

import pytest

import vitzoo
from tests.helpers.hub_sources import hf_folder, timm_folder

GB = 1 << 30


def _peak_rss() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def _edit(folder, change):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))


def _refused(folder, *names):
    before = _peak_rss()
    with pytest.raises(ValueError) as err:
        vitzoo.load(folder)
    message = str(err.value)
    assert "\n" not in message and all(n in message for n in names), message
    assert _peak_rss() - before < 1 * GB, "the refusal allocated the claimed model"


@pytest.fixture(scope="module")
def timm_vit(tmp_path_factory):
    _, folder = timm_folder(tmp_path_factory.mktemp("timm"), "vit_tiny_patch16_224", num_classes=3)
    return folder


@pytest.mark.parametrize(
    ("claim", "names"),
    [
        ({"embed_dim": 1536, "depth": 40, "num_heads": 16}, ("embed_dim=1536", "depth=40")),
        ({"embed_dim": 65536, "num_heads": 16}, ("embed_dim=65536",)),
        ({"depth": 100_000}, ("depth=100000",)),
        ({"img_size": 100_000}, ("pos_embed",)),  # width and depth right, an enormous position table claimed
    ],
    ids=["1536x40", "65536-wide", "100000-deep", "100000px"],
)
def test_lying_timm_model_args_are_refused_without_building_the_claim(timm_vit, tmp_path, claim, names):
    folder = tmp_path / "lying"
    folder.mkdir()
    for f in timm_vit.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    _edit(folder, lambda c: c.setdefault("model_args", {}).update(claim))
    _refused(folder, *names)


def test_timm_architecture_claiming_a_giant_is_refused_on_meta(timm_vit, tmp_path):
    folder = tmp_path / "giant"
    folder.mkdir()
    for f in timm_vit.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    _edit(folder, lambda c: (c.__setitem__("architecture", "vit_giant_patch14_224"), c.pop("model_args", None)))
    _refused(folder, "embed_dim=1408", "depth=40")  # timm builds the giant (1408 wide x 40 deep) on meta only


@pytest.mark.parametrize(
    ("claim", "names"),
    [
        ({"hidden_size": 65536, "num_attention_heads": 16}, ("hidden_size=65536",)),
        ({"num_hidden_layers": 100_000}, ("num_hidden_layers=100000",)),
        ({"image_size": 8 * 20_000}, ("pos_embed",)),
    ],
    ids=["65536-wide", "100000-deep", "160000px"],
)
def test_lying_transformers_config_is_refused_without_building_the_claim(tmp_path, claim, names):
    _, folder = hf_folder(tmp_path / "vit", "ViTModel", "ViTConfig")
    _edit(folder, lambda c: c.update(claim))
    _refused(folder, *names)


def test_lying_videomae_config_computes_no_table_of_the_claimed_size(tmp_path):
    """VideoMAE's position table is computed from the config, not stored: a claimed tubelet of 4 frames (the weights'
    is 2) over 2 * 10^5 frames at 64 px would make a ~1.8 GB table before any shape is compared, unless the key
    table runs on ``meta`` first."""
    _, folder = hf_folder(
        tmp_path / "mae", "VideoMAEModel", "VideoMAEConfig", num_frames=4, tubelet_size=2, intermediate_size=96
    )
    _edit(folder, lambda c: c.update(num_frames=200_000, image_size=64, tubelet_size=4))
    _refused(folder, "tubelet_size=2")
