"""timm's model-test assertions (``timm/tests/test_models.py``), run on every registered model at a tiny size.

A new family cannot ship without timm's vocabulary (its nano / micro member runs in the default suite, every
registered name with ``make test-all``): forward / backward, ``pretrained_cfg`` (what
``timm.data.resolve_model_data_config`` reads), ``num_classes`` / ``head_hidden_size`` / ``get_classifier`` /
``reset_classifier``, ``group_matcher`` (timm's layer decay equals vitzoo's), ``feature_info`` and the
``features_only`` backbone. TorchScript and FX tracing are not supported (see docs/timm.md).
"""

from __future__ import annotations

import pytest
import torch
from timm.data import resolve_model_data_config
from timm.models import group_parameters
from timm.models._features import FeatureGetterNet
from timm.optim import create_optimizer_v2

import vitzoo
from tests.helpers.zoo import random_input, tiny_input_overrides
from vitzoo.train.optim import param_groups

NANO = vitzoo.list_models("*nano*")
SMALL = sorted({*NANO, *vitzoo.list_models("*micro*")})  # every family has one; the default suite runs these
# Every registered name; the wider ones (base, large, ...: 1-7 s each here) run with the slow tests (make test-all),
# which keeps the default suite within its time budget while every family is still checked by default.
NAMES = [name if name in SMALL else pytest.param(name, marks=pytest.mark.slow) for name in vitzoo.list_models()]


def _tiny(name: str, seed: int = 0, **extra):
    torch.manual_seed(seed)
    return vitzoo.create(name, **{**tiny_input_overrides(name, depth=2), **extra})


def _lr_scales(groups) -> dict[int, float]:
    return {id(p): g["lr_scale"] for g in groups for p in g["params"]}


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_and_timm_members(name):
    model = _tiny(name).train()
    x = random_input(model)
    model(x).mean().backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, f"parameters without a gradient: {unused}"
    model.eval()
    assert model.num_classes == 3 and model.get_classifier() is model.head
    with torch.no_grad():
        pooled = model.forward_head(model.forward_features(x), pre_logits=True)
    assert pooled.shape == (2, model.head_hidden_size)
    model.reset_classifier(7)
    assert model.num_classes == model.cfg.num_classes == 7 and model.get_classifier().out_features == 7
    model.reset_classifier(0, "")  # timm's unpooled tokens
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.forward_features(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"global_pool='max': \w+ pools with one of \['', 'avg'"):
        model.reset_classifier(0, "max")


@pytest.mark.parametrize("name", NAMES)
def test_pretrained_cfg_gives_the_models_preprocessing(name):
    model = _tiny(name)
    cfg, pretrained = model.cfg, model.pretrained_cfg
    data = resolve_model_data_config(model)
    assert data["mean"] == tuple(cfg.mean) and data["std"] == tuple(cfg.std)  # not ImageNet's by default
    assert data["input_size"] == (cfg.in_chans, *cfg.img_hw) and model.default_cfg == pretrained
    frames = model.input_shape[1] if model.modality == "video" else None
    assert pretrained.get("num_frames") == frames
    state = model.state_dict()
    assert state[pretrained["first_conv"] + ".weight"].shape[1] == cfg.in_chans  # timm's default-cfg test
    assert pretrained["classifier"] + ".weight" in state and pretrained["num_classes"] == 3


@pytest.mark.parametrize("name", NAMES)
def test_timm_layer_decay_equals_vitzoo_layer_decay(name):
    model = _tiny(name)
    timm_scales = _lr_scales(create_optimizer_v2(model, "adamw", lr=1e-3, layer_decay=0.75).param_groups)
    ours = _lr_scales(param_groups(model, weight_decay=0.05, layer_decay=0.75))
    names = {id(p): n for n, p in model.named_parameters()}
    assert len(set(ours.values())) > 2  # one scale per block at least: layer decay is not a no-op
    assert {names[i]: timm_scales[i] for i in ours} == {names[i]: s for i, s in ours.items()}
    coarse = group_parameters(model, model.group_matcher(coarse=True))
    assert sum(len(v) for v in coarse.values()) == len(names)


@pytest.mark.parametrize("name", NAMES)
def test_feature_info_and_features_only_backbone(name):
    model = _tiny(name).eval()
    x = random_input(model)
    with torch.no_grad():
        maps = model.forward_intermediates(x, intermediates_only=True)
    info = model.feature_info
    assert len(info) == len(maps) == model.num_taps
    for tap, fmap in zip(info, maps, strict=True):
        model.get_submodule(tap["module"])
        assert fmap.shape[1] == tap["num_chs"] and fmap.shape[-2] == -(-x.shape[-2] // tap["reduction"])
        if model.modality == "video" and tap["axes"] == "thw":
            assert fmap.shape[2] == -(-x.shape[2] // tap["temporal_reduction"])
    backbone = _tiny(name, features_only=True, out_indices=[0]).eval()
    assert sum(p.numel() for p in backbone.parameters()) < sum(p.numel() for p in model.parameters())  # pruned
    with torch.no_grad():
        (first,) = backbone(x)
    torch.testing.assert_close(first, maps[0], rtol=0, atol=0)
    assert backbone.feature_info.channels() == [info[0]["num_chs"]]
    assert backbone.feature_info.reduction() == [info[0]["reduction"]]


@pytest.mark.parametrize("name", ["vit_nano_patch8_32", "swin_nano_patch4_window4_32"])
def test_timm_feature_getter_net_wraps_an_image_model(name):
    model = _tiny(name).eval()
    x = random_input(model)
    with torch.no_grad():
        expected = model.forward_intermediates(x, indices=[0, 1], intermediates_only=True)
        net = FeatureGetterNet(model, out_indices=[0, 1]).eval()
        for got, want in zip(net(x), expected, strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_video_backbone_yields_ncthw_and_refuses_image_formats():
    backbone = _tiny("vivit_joint_nano_8x2", features_only=True, out_indices=2)
    maps = backbone(torch.randn(2, 3, 4, 16, 16))
    assert [m.shape for m in maps] == [(2, 64, 2, 2, 2)] * 2
    with pytest.raises(ValueError, match="output_fmt='NCHW': a video backbone yields one of"):
        type(backbone)(_tiny("vivit_joint_nano_8x2"), output_fmt="NCHW")


@pytest.mark.parametrize("name", NANO)
def test_forward_intermediates_checkpoints_as_forward(name, monkeypatch):
    calls = []
    original = torch.utils.checkpoint.checkpoint

    def counting(fn, *args, **kwargs):
        calls.append(type(fn).__name__)
        return original(fn, *args, **kwargs)

    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", counting)
    model = _tiny(name).train()
    model.set_grad_checkpointing(True)
    x = random_input(model)
    model(x)
    in_forward, calls[:] = list(calls), []
    model.forward_intermediates(x)
    assert in_forward and calls == in_forward


def test_pretrained_cfg_of_a_hub_checkpoint_names_it_and_its_normalisation(tmp_path, hub_cache):
    source = vitzoo.create("vit_nano_patch8_32", mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6))
    name = hub_cache.add("me/vit-nano", vitzoo.save_pretrained(source, tmp_path / "out"), revision="v2")
    model = vitzoo.create("vivit_fact_enc_nano_8x2", pretrained=name, num_classes=4)
    assert model.pretrained_cfg["hf_hub_id"] == "me/vit-nano"
    data = resolve_model_data_config(model)
    assert data["mean"] == (0.1, 0.2, 0.3) and data["std"] == (0.4, 0.5, 0.6)  # adopted from the checkpoint
    assert "hf_hub_id" not in vitzoo.create("vit_nano_patch8_32").pretrained_cfg
