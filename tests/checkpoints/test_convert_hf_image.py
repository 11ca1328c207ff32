"""transformers image checkpoints (ViT, DINOv2, DINOv2 with registers) -> vitzoo ViT, exactly: from Hub repositories
read offline from a cache (no transformers model built by vitzoo) and from model objects; the reference is
transformers' own model loaded from the same files."""

from __future__ import annotations

import logging

import pytest
import torch

import vitzoo
from tests.helpers.hub_sources import MEAN, STD, hf_folder, max_diff
from vitzoo.checkpoints import hf_image, hf_video

transformers = pytest.importorskip("transformers")

TOL = 1e-5
# class -> (config class, config overrides): each at a small non-default size
CASES = {
    "ViTForImageClassification": ("ViTConfig", dict(intermediate_size=96, num_labels=5, layer_norm_eps=1e-6)),
    "ViTModel": ("ViTConfig", dict(intermediate_size=96, qkv_bias=False, hidden_act="gelu_new")),
    "Dinov2Model": ("Dinov2Config", dict(mlp_ratio=2, layerscale_value=0.1)),
    "Dinov2WithRegistersModel": ("Dinov2WithRegistersConfig", dict(mlp_ratio=2, num_register_tokens=3)),
}


@pytest.fixture(params=CASES)
def hf_hub(request, tmp_path, hub_cache):
    """(transformers model, its hf-hub: name, the model transformers reads back from the cached snapshot)."""
    config_name, overrides = CASES[request.param]
    model, folder = hf_folder(tmp_path / "src", request.param, config_name, **overrides)
    name = hub_cache.add(f"org/{request.param.lower()}", folder)
    ref = getattr(transformers, request.param).from_pretrained(hub_cache.snapshot(f"org/{request.param.lower()}"))
    return model, name, ref.eval()


def _outputs(ours, ref, x):
    out = ref(pixel_values=x)
    if hasattr(out, "logits"):
        return ours(x), out.logits
    return ours.forward_features(x), out.last_hidden_state


def test_hub_repo_converts_exactly(hf_hub, caplog):
    model, name, ref = hf_hub
    with caplog.at_level(logging.INFO, logger="vitzoo"):
        ours = vitzoo.load(name)
    assert f"recognised transformers {type(model).__name__}:" in caplog.text
    assert (ours.cfg.mean, ours.cfg.std) == (MEAN, STD)  # from preprocessor_config.json
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a, b = _outputs(ours, ref, x)
        assert a.shape == b.shape and max_diff(a, b) <= TOL


def test_model_object_converts_exactly(hf_hub):
    model, _, _ = hf_hub
    ours = vitzoo.convert.from_hf(model)
    assert not ours.training
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a, b = _outputs(ours, model, x)
        assert max_diff(a, b) <= TOL


@pytest.mark.parametrize("name", ["Dinov2Model", "Dinov2WithRegistersModel"])
def test_dinov2_matches_at_other_input_sizes(name, tmp_path):
    """DINOv2 resamples its position table for every input size (Dinov2Model without antialiasing, the
    registers variant with it); the converted model does the same, so features match at any size."""
    config_name, overrides = CASES[name]
    model, _ = hf_folder(tmp_path, name, config_name, preprocessor=False, **overrides)
    ours = vitzoo.convert.from_hf(model)
    assert ours.cfg.dynamic_size and ours.cfg.resample_antialias == (name != "Dinov2Model")
    for size in [(48, 40), (16, 24)]:
        x = torch.randn(1, 3, *size)
        with torch.no_grad():
            assert max_diff(ours.forward_features(x), model(pixel_values=x).last_hidden_state) <= TOL
    ours.cfg.resample_antialias = not ours.cfg.resample_antialias  # negative control: the other kernel differs
    with torch.no_grad():
        assert max_diff(ours.forward_features(x), model(pixel_values=x).last_hidden_state) > 100 * TOL


def test_dinov2_registers_class_position_is_folded_into_the_token(tmp_path):
    config_name, overrides = CASES["Dinov2WithRegistersModel"]
    model, _ = hf_folder(tmp_path, "Dinov2WithRegistersModel", config_name, **overrides)
    ours = vitzoo.convert.from_hf(model)
    emb = model.embeddings
    torch.testing.assert_close(ours.cls_token, emb.cls_token + emb.position_embeddings[:, :1], rtol=0, atol=0)
    assert ours.cfg.reg_tokens == 3 and ours.num_prefix_tokens == 4
    with torch.no_grad():  # negative control: without the fold the outputs differ
        ours.cls_token.copy_(emb.cls_token)
        x = torch.randn(1, 3, 32, 32)
        assert max_diff(ours.forward_features(x), model(pixel_values=x).last_hidden_state) > 100 * TOL


def test_vit_pooler_and_mask_token_are_dropped_saying_so(tmp_path, caplog):
    model, _ = hf_folder(tmp_path, "ViTModel", "ViTConfig", intermediate_size=96)
    with caplog.at_level(logging.WARNING, logger="vitzoo"):
        ours = vitzoo.convert.from_hf(model)
    assert "dropped pooler" in caplog.text and ours.cfg.num_classes == 0


@pytest.mark.parametrize(
    "config_name, defaults",
    [
        ("ViTConfig", hf_image.VIT_DEFAULTS),
        ("Dinov2Config", hf_image.DINOV2_DEFAULTS),
        ("Dinov2WithRegistersConfig", hf_image.DINOV2_REG_DEFAULTS),
        ("VivitConfig", hf_video.VIVIT_DEFAULTS),
        ("TimesformerConfig", hf_video.TIMESFORMER_DEFAULTS),
        ("VideoMAEConfig", hf_video.VIDEOMAE_DEFAULTS),
    ],
)
def test_default_tables_match_transformers(config_name, defaults):
    """Old Hub configs omit fields; vitzoo falls back to these tables, which must equal transformers' defaults."""
    cfg = getattr(transformers, config_name)()
    for field, value in defaults.items():
        theirs = getattr(cfg, field)
        assert (list(theirs) if isinstance(theirs, tuple) else theirs) == value, field


def test_unsupported_hf_options_raise_naming_them(tmp_path, hub_cache):
    _, folder = hf_folder(tmp_path / "a", "Dinov2Model", "Dinov2Config", use_swiglu_ffn=True)
    with pytest.raises(NotImplementedError, match="use_swiglu_ffn=True"):
        vitzoo.load(hub_cache.add("org/swiglu", folder))
    _, folder = hf_folder(tmp_path / "b", "Dinov2ForImageClassification", "Dinov2Config", num_labels=3)
    with pytest.raises(NotImplementedError, match="Dinov2ForImageClassification: of this family vitzoo converts"):
        vitzoo.load(hub_cache.add("org/dinov2-cls", folder))
