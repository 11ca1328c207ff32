"""Token merging per family: shapes, r = 0 identity, token sizes, grid formats refused, one-line refusals."""

from __future__ import annotations

import pytest
import torch

import vitzoo
from vitzoo.errors import UnsupportedFeatureError
from vitzoo.schema import ConfigError

CLIP = (2, 3, 4, 32, 32)  # the nano video models: 2 x 4 x 4 tubelets
MERGING = ["vivit_joint_nano_8x2", "vivit_fact_enc_nano_8x2", "vtn_nano_patch8_32", "frame_avg_nano_patch8_32"]
GRID_MERGING = ["timesformer_nano_patch8_32", "vivit_fact_sa_nano_8x2", "vivit_fact_dot_nano_8x2"]  # per frame
REFUSING = {
    "mvitv2_nano_4x2": "hierarchical",
    "video_swin_nano_4x2": "hierarchical",
    "swin_nano_patch4_window4_32": "hierarchical",
}


def _build(name, **overrides):
    torch.manual_seed(0)
    return vitzoo.create(name, num_classes=3, **overrides).eval()


def _clip(model):
    return torch.randn(2, *model.input_shape, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", MERGING + GRID_MERGING)
def test_merging_shapes_sizes_and_r_zero_identity(name):
    model = _build(name)
    x = _clip(model)
    with torch.no_grad():
        plain = model(x)
        model.set_token_merging(0)
        assert torch.equal(model(x), plain)  # r = 0: the unmerged path, bit for bit
        model.set_token_merging(3)
        merged = model(x)
    assert merged.shape == plain.shape and torch.isfinite(merged).all()
    assert not torch.equal(merged, plain)
    t, h, w = model.cfg.grid_thw
    p = int(model.cfg.class_token)
    if model.cfg.encoder == "joint":  # the whole space-time sequence merges; the final tokens carry their sizes
        depth = model.cfg.depth
        assert model.forward_features(x).shape[1] == p + t * h * w - 3 * depth
        assert (model.token_sizes.sum(dim=1) == p + t * h * w).all()
    elif name in GRID_MERGING:  # the same positions merge in every frame; the sizes repeat over the frames
        n = h * w - 3 * model.cfg.depth
        assert model.forward_features(x).shape[1] == p + t * n
        assert model.token_sizes.shape == (2, p + t * n, 1)
        assert (model.token_sizes.sum(dim=1) == p + t * h * w).all()
    else:  # each frame merges on its own in the spatial stage; the temporal stage is untouched
        spatial = model.encoder.spatial
        assert (spatial.token_sizes.sum(dim=1) == spatial.num_prefix_tokens + h * w).all()
        assert spatial.token_sizes.shape[:2] == (2 * t, spatial.num_prefix_tokens + h * w - 3 * model.cfg.depth)
        assert model.token_sizes is None


@pytest.mark.parametrize(
    "name",
    ["vivit_joint_nano_8x2", "vivit_fact_enc_nano_8x2", "vit_nano_patch8_32", "timesformer_nano_patch8_32",
     "vivit_fact_sa_nano_8x2"],
)  # fmt: skip
def test_intermediates_only_nlc_while_merging(name):
    model = _build(name, token_merging=2)
    x = _clip(model)
    grid_fmt = "NCHW" if model.modality == "image" else "NCTHW"
    with pytest.raises(ValueError, match="token merging is on, so the tokens form no grid; use output_fmt='NLC'"):
        model.forward_intermediates(x, output_fmt=grid_fmt)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x, output_fmt="NLC")
        assert torch.equal(final, model.forward_features(x))
    assert all(m.ndim == 3 and m.shape[0] == 2 for m in maps)
    assert maps[-1].shape[1] < maps[0].shape[1] or model.cfg.depth == 1


@pytest.mark.parametrize("name", ["vivit_joint_nano_8x2", "vit_nano_patch8_32"])
def test_token_dropping_refuses_merged_tokens(name):
    """forward_visible needs each visible token at its grid position (the MAE decoder puts it back there)."""
    model = _build(name, token_merging=2)
    x = _clip(model)
    model.set_token_merging(0)
    with torch.no_grad():
        mask = torch.zeros(2, model.forward_features(x).shape[1] - model.num_prefix_tokens, dtype=torch.bool)
    model.set_token_merging(2)
    with pytest.raises(UnsupportedFeatureError, match=r"forward_visible .* token merging is on .*set_token_merging"):
        model.forward_visible(x, mask)
    model.set_token_merging(0)
    with torch.no_grad():
        assert torch.equal(model.forward_visible(x, mask), model.forward_features(x))


@pytest.mark.parametrize("name", sorted(REFUSING))
def test_families_that_cannot_merge_refuse_in_one_line(name):
    with pytest.raises(ConfigError, match=REFUSING[name]) as info:
        vitzoo.create(name, token_merging=2)
    assert "\n" not in str(info.value)
    model = vitzoo.create(name)
    with pytest.raises(ConfigError, match=REFUSING[name]):
        model.set_token_merging(1)
    model.set_token_merging(0)  # switching it off is always fine


def test_schedule_and_pooling_checks():
    with pytest.raises(ConfigError, match="lists 3 blocks; the model has depth=2"):
        vitzoo.create("vit_nano_patch8_32", token_merging=[1, 1, 1])
    with pytest.raises(ConfigError, match="must be >= 0"):
        vitzoo.create("vit_nano_patch8_32", token_merging=-1)
    with pytest.raises(ConfigError, match="global_pool='map'"):
        vitzoo.create("vit_nano_patch8_32", global_pool="map", token_merging=1)


def test_merging_is_saved_with_the_config(tmp_path):
    model = _build("vivit_joint_nano_8x2", token_merging=[2, 1], token_merging_prop_attn=False)
    loaded = vitzoo.load(vitzoo.save(model, tmp_path / "m.safetensors"))
    assert loaded.cfg.token_merging == (2, 1) and loaded.cfg.token_merging_prop_attn is False
    x = _clip(model)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
