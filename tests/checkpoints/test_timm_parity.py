"""Exact parity with timm's VisionTransformer: random timm models converted to vitzoo give the same logits."""

from __future__ import annotations

import pytest
import timm
import torch

import vitzoo

# (timm name, extra timm kwargs): every mapped feature at least once.
TIMM_CASES = [
    ("vit_tiny_patch16_224", {}),
    ("vit_small_patch16_224", {}),
    ("vit_base_patch16_224", {}),
    ("vit_small_patch32_224", {}),
    ("vit_base_patch32_224", {}),
    ("vit_base_patch16_224", {"global_pool": "avg"}),  # fc_norm after pooling
    ("vit_base_patch16_gap_224", {}),  # no class token, avg pool, no fc_norm
    ("vit_small_patch16_224", {"qk_norm": True}),
    ("vit_small_patch16_224", {"init_values": 1e-5}),  # LayerScale
    ("vit_small_patch16_224", {"no_embed_class": True}),
    ("vit_small_patch16_224", {"pre_norm": True}),
]
SHRINK = dict(img_size=64, depth=2, num_classes=7)


def _ids(case):
    name, kw = case
    return name + "".join(f"-{k}={v}" for k, v in kw.items())


@pytest.fixture(params=TIMM_CASES, ids=[_ids(c) for c in TIMM_CASES])
def timm_model(request):
    name, kw = request.param
    model = timm.create_model(name, pretrained=False, **SHRINK, **kw).eval()
    with torch.no_grad():  # make LayerScale / norms non-trivial so a wrong mapping cannot pass
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


def test_from_timm_module_exact(timm_model, tmp_path):
    x = torch.randn(2, 3, 64, 64)
    ours = vitzoo.convert.from_timm(timm_model).eval()
    with torch.no_grad():
        ref = timm_model(x)
        out = ours(x)
        assert (out - ref).abs().max().item() <= 1e-5
        reloaded = vitzoo.load(vitzoo.save(ours, tmp_path / "vit.safetensors"))
        assert (reloaded(x) - ref).abs().max().item() <= 1e-5


def test_from_timm_state_dict_exact(timm_model):
    x = torch.randn(2, 3, 64, 64)
    heads = timm_model.blocks[0].attn.num_heads
    ours = vitzoo.convert.from_timm(timm_model.state_dict(), num_heads=heads).eval()
    with torch.no_grad():
        assert (ours(x) - timm_model(x)).abs().max().item() <= 1e-5


def test_from_timm_state_dict_needs_heads(timm_model):
    with pytest.raises(ValueError, match="num_heads"):
        vitzoo.convert.from_timm(timm_model.state_dict())


def test_from_timm_features_and_intermediates_match():
    t = timm.create_model("vit_small_patch16_224", pretrained=False, **SHRINK).eval()
    ours = vitzoo.convert.from_timm(t).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours.forward_features(x), t.forward_features(x), rtol=0, atol=1e-5)
        ref = t.get_intermediate_layers(x, n=2, reshape=True)
        got = ours.get_intermediate_layers(x, n=2, reshape=True)
        for a, b in zip(got, ref, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_dynamic_img_size_matches_timm():
    t = timm.create_model("vit_small_patch16_224", pretrained=False, dynamic_img_size=True, **SHRINK).eval()
    ours = vitzoo.convert.from_timm(t).eval()
    x = torch.randn(1, 3, 96, 80)  # not the training size, not square
    with torch.no_grad():
        torch.testing.assert_close(ours(x), t(x), rtol=0, atol=1e-5)


def test_timm_checkpoint_file_loads_via_create(tmp_path):
    """A timm-layout safetensors file (no vitzoo metadata) is accepted by ``create(pretrained=...)``."""
    from safetensors.torch import save_file

    t = timm.create_model("vit_small_patch16_224", pretrained=False, **SHRINK).eval()
    save_file(t.state_dict(), str(tmp_path / "timm.safetensors"))
    ours = vitzoo.create(
        "vit_small_patch16_224", img_size=64, depth=2, num_classes=7, pretrained=tmp_path / "timm.safetensors"
    ).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (ours(x) - t(x)).abs().max().item() <= 1e-5


@pytest.mark.parametrize(
    "kwargs, feature",
    [
        ({"patch_drop_rate": 0.1}, "patch dropout"),
        ({"final_norm": False}, "final_norm=False"),
        ({"class_token": False, "global_pool": "max"}, "global_pool='max'"),
    ],
)
def test_unsupported_timm_features_raise(kwargs, feature):
    t = timm.create_model("vit_small_patch16_224", pretrained=False, **SHRINK, **kwargs)
    with pytest.raises(NotImplementedError, match=feature):
        vitzoo.convert.from_timm(t)
