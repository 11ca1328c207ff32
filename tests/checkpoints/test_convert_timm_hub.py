"""timm ViTs people download (CLIP, DINOv2 with registers, DeiT distilled, SigLIP), as modules and as timm Hub
repositories read offline from a Hub cache: exact parity with timm's own model built from the same files."""

from __future__ import annotations

import json
import logging

import pytest
import timm
import torch

import vitzoo
from tests.helpers.hub_sources import max_diff, timm_folder

# timm Hub repository (architecture.tag) -> what vitzoo must read off it
TIMM_HUB = {
    "vit_base_patch16_clip_224.openai": dict(pre_norm=True, act="gelu", norm_eps=1e-5),
    "vit_base_patch16_clip_quickgelu_224.openai": dict(pre_norm=True, act="quick_gelu", norm_eps=1e-5),
    "vit_small_patch14_reg4_dinov2.lvd142m": dict(reg_tokens=4, no_embed_class=True),
    "deit_base_distilled_patch16_224.fb_in1k": dict(dist_token=True),
    "vit_base_patch16_siglip_224.webli": dict(class_token=False, global_pool="map"),
}
TOL = 1e-5


@pytest.fixture(params=TIMM_HUB, ids=[n.split(".")[0] for n in TIMM_HUB])
def timm_hub(request, tmp_path, hub_cache):
    """(timm model, its hf-hub: name in the offline cache, expected config facts)."""
    model, folder = timm_folder(tmp_path / "src", request.param)
    return model, hub_cache.add(f"timm/{request.param}", folder), TIMM_HUB[request.param]


def test_hub_repo_loads_exactly_as_timm_reads_it(timm_hub, caplog):
    src, name, facts = timm_hub
    with caplog.at_level(logging.INFO, logger="vitzoo"):
        ours = vitzoo.load(name)
    assert "timm layout (config.json names architecture" in caplog.text
    assert {k: getattr(ours.cfg, k) for k in facts} == facts
    assert ours.cfg.mean == tuple(src.pretrained_cfg["mean"])
    ref = timm.create_model(name, pretrained=True).eval()  # timm reading the same cache, offline
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert max_diff(ours(x), ref(x)) <= TOL
        assert max_diff(ours.forward_features(x), ref.forward_features(x)) <= TOL
        assert max_diff(ours.forward_head(ours.forward_features(x), pre_logits=True), ref.forward_head(
            ref.forward_features(x), pre_logits=True)) <= TOL  # fmt: skip


def test_module_conversion_is_exact(timm_hub):
    src, _, facts = timm_hub
    ours = vitzoo.convert.from_timm(src).eval()
    assert {k: getattr(ours.cfg, k) for k in facts} == facts
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert max_diff(ours(x), src(x)) <= TOL


def test_from_timm_and_from_hub_take_the_hub_name(tmp_path, hub_cache):
    src, folder = timm_folder(tmp_path, "vit_base_patch16_clip_224.openai")
    name = hub_cache.add("timm/vit_base_patch16_clip_224.openai", folder)
    x = torch.randn(1, 3, 32, 32)
    for convert in (vitzoo.convert.from_timm, vitzoo.convert.from_hub):
        ours = convert(name)
        assert ours.training
        with torch.no_grad():
            assert max_diff(ours.eval()(x), src(x)) <= TOL


@pytest.mark.parametrize(
    "architecture, corrupt",
    [
        ("deit_base_distilled_patch16_224.fb_in1k", lambda m: m.head_dist.weight.zero_()),
        ("vit_small_patch14_reg4_dinov2.lvd142m", lambda m: m.reg_token.zero_()),
        ("vit_base_patch16_siglip_224.webli", lambda m: m.attn_pool.latent.zero_()),
        ("vit_base_patch16_clip_224.openai", lambda m: m.norm_pre.weight.fill_(1.0)),
    ],
    ids=["distillation-head", "registers", "attention-pool", "pre-norm"],
)
def test_parity_detects_the_new_parts(architecture, corrupt, tmp_path):
    """Negative control: each part the conversion now maps changes the output when wrong."""
    src, _ = timm_folder(tmp_path, architecture)
    ours = vitzoo.convert.from_timm(src).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        corrupt(ours)
        assert max_diff(ours(x), src(x)) > 100 * TOL


def test_non_vit_timm_repo_is_refused_naming_the_class(tmp_path, hub_cache):
    folder = tmp_path / "resnet"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architecture": "resnet18", "num_classes": 10}))
    name = hub_cache.add("timm/resnet18.a1_in1k", folder)
    with pytest.raises(NotImplementedError, match="resnet18.* is a ResNet"):
        vitzoo.load(name)


def test_unsupported_timm_features_still_raise_naming_them(tmp_path):
    from timm.layers import SwiGLUPacked

    t = timm.create_model("vit_small_patch16_224", img_size=32, patch_size=8, depth=1, mlp_layer=SwiGLUPacked)
    with pytest.raises(NotImplementedError, match="mlp_layer=GluMlp"):
        vitzoo.convert.from_timm(t)
