"""Exact parity with Hugging Face ``transformers`` ViViT and TimeSformer (``vitzoo.convert.from_hf``).

Random HF models, every parameter perturbed (HF starts class tokens and position tables at zero and
LayerNorms at identity, which could hide a wrong mapping), are converted; in eval mode and fp32 the
converted models must give the HF models' logits / pooled features to ``1e-4`` (max abs diff). The
reference is always the HF model's own output. HF takes ``pixel_values (B, T, C, H, W)``, vitzoo
``(B, C, T, H, W)``: the tests feed both the same clip, permuted.
"""

from __future__ import annotations

import logging

import pytest
import torch
from einops import rearrange

import vitzoo
from tests.helpers.hub_sources import hf_clip, max_diff, to_vitzoo

transformers = pytest.importorskip("transformers")

TOL = 1e-4
# The HF defaults shrunk to CPU size: 4 frames at 32 px, width 64, 2 layers, 4 heads.
TINY = dict(
    image_size=32, num_frames=4, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256
)
NUM_LABELS = 7
# Std of the noise added to every HF parameter. HF's own init (std 0.02) leaves TimeSformer's temporal branch so
# weak that a wrongly mapped temporal tensor moves the logits by < 1e-3; at 0.2 every corruption tested below
# moves them by > 0.3 while correct conversions stay within ~2e-6.
PERTURB = 0.2

VIVIT_CASES = {
    "default": dict(tubelet_size=[2, 8, 8]),  # HF default activation gelu_fast
    "frames8": dict(tubelet_size=[2, 8, 8], num_frames=8),
    "img48": dict(tubelet_size=[2, 8, 8], image_size=48),
    "tubelet1": dict(tubelet_size=[1, 8, 8]),
    "tubelet4-patch16-img64": dict(tubelet_size=[4, 16, 16], num_frames=8, image_size=64),
    "depth3-heads2": dict(tubelet_size=[2, 8, 8], num_hidden_layers=3, num_attention_heads=2),
    "depth1-heads8": dict(tubelet_size=[2, 8, 8], num_hidden_layers=1, num_attention_heads=8),
    "gelu-no_qkv_bias-eps-mlp96": dict(
        tubelet_size=[2, 8, 8], hidden_act="gelu", qkv_bias=False, layer_norm_eps=1e-12, intermediate_size=96
    ),
    "gelu_pytorch_tanh": dict(tubelet_size=[2, 8, 8], hidden_act="gelu_pytorch_tanh"),
    "gelu_new-4channels": dict(tubelet_size=[2, 8, 8], hidden_act="gelu_new", num_channels=4),
}
TIMESFORMER_CASES = {
    "default": dict(patch_size=8),  # HF default activation gelu
    "frames8": dict(patch_size=8, num_frames=8),
    "frames1": dict(patch_size=8, num_frames=1),
    "img48": dict(patch_size=8, image_size=48),
    "patch16-img64": dict(patch_size=16, image_size=64),
    "depth3-heads2": dict(patch_size=8, num_hidden_layers=3, num_attention_heads=2),
    "depth1-heads8": dict(patch_size=8, num_hidden_layers=1, num_attention_heads=8),
    "gelu_fast-no_qkv_bias-eps-mlp96": dict(
        patch_size=8, hidden_act="gelu_fast", qkv_bias=False, layer_norm_eps=1e-12, intermediate_size=96
    ),
    "gelu_pytorch_tanh": dict(patch_size=8, hidden_act="gelu_pytorch_tanh"),
    "gelu_new-4channels": dict(patch_size=8, hidden_act="gelu_new", num_channels=4),
}
FAMILIES = {  # family -> (config class, classification class, backbone class)
    "vivit": ("VivitConfig", "VivitForVideoClassification", "VivitModel"),
    "timesformer": ("TimesformerConfig", "TimesformerForVideoClassification", "TimesformerModel"),
}
ATTENTION = ["eager", "sdpa"]


def hf_model(family: str, overrides: dict, *, backbone: bool = False, attn: str = "eager", **extra):
    """A random HF model of ``family`` with every parameter perturbed, in eval mode.

    Skips when transformers has no ``attn`` implementation for that model (TimeSformer has no SDPA path).
    """
    config_name, head_name, base_name = FAMILIES[family]
    cfg = getattr(transformers, config_name)(**{**TINY, **overrides, **extra}, attn_implementation=attn)
    cls = getattr(transformers, base_name if backbone else head_name)
    try:
        model = cls(cfg)
    except ValueError as err:
        if attn != "eager" and "does not support" in str(err):
            pytest.skip(f"transformers {transformers.__version__}: {cls.__name__} has no {attn!r} attention")
        raise
    assert model.config._attn_implementation == attn
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * PERTURB)
    return model.eval()


def _logits_match(family: str, overrides: dict, attn: str, encoder: str) -> None:
    hf = hf_model(family, overrides, attn=attn, num_labels=NUM_LABELS)
    ours = vitzoo.convert.from_hf(hf)
    assert ours.cfg.encoder == encoder and not ours.training
    x = hf_clip(hf)
    with torch.no_grad():
        ref = hf(pixel_values=x).logits
        out = ours(to_vitzoo(x))
    assert out.shape == ref.shape == (2, NUM_LABELS)
    assert max_diff(out, ref) <= TOL


@pytest.mark.parametrize("attn", ATTENTION)
@pytest.mark.parametrize("overrides", VIVIT_CASES.values(), ids=VIVIT_CASES.keys())
def test_vivit_logits_match(overrides, attn):
    _logits_match("vivit", overrides, attn, "joint")


@pytest.mark.parametrize("attn", ATTENTION)
@pytest.mark.parametrize("overrides", TIMESFORMER_CASES.values(), ids=TIMESFORMER_CASES.keys())
def test_timesformer_logits_match(overrides, attn):
    _logits_match("timesformer", overrides, attn, "divided")


@pytest.mark.parametrize("family", FAMILIES)
def test_backbone_features_match(family, caplog):
    """``VivitModel`` / ``TimesformerModel``: vitzoo's ``forward_features`` tokens are HF's ``last_hidden_state``
    (TimeSformer's patch tokens reordered from HF's location-major to vitzoo's time-major layout) and the pooled
    features are HF's final class token."""
    overrides = VIVIT_CASES["default"] if family == "vivit" else TIMESFORMER_CASES["default"]
    hf = hf_model(family, overrides, backbone=True)
    with caplog.at_level(logging.INFO, logger="vitzoo"):
        ours = vitzoo.convert.from_hf(hf)
    assert f"recognised transformers {type(hf).__name__}:" in caplog.text
    assert ours.cfg.num_classes == 0 and isinstance(ours.head, torch.nn.Identity)
    if family == "vivit":  # VivitModel has a dense+tanh pooler by default, which vitzoo does not have
        assert "pooler" in caplog.text and "dropped" in caplog.text
    x = hf_clip(hf)
    with torch.no_grad():
        ref = hf(pixel_values=x).last_hidden_state  # (B, 1 + L, D)
        tokens = ours.forward_features(to_vitzoo(x))
        pooled = ours.forward_head(tokens, pre_logits=True)
    if family == "timesformer":
        ref = torch.cat([ref[:, :1], rearrange(ref[:, 1:], "b (n t) d -> b (t n) d", t=hf.config.num_frames)], dim=1)
    assert tokens.shape == ref.shape
    assert max_diff(tokens, ref) <= TOL
    assert max_diff(pooled, ref[:, 0]) <= TOL


@pytest.mark.parametrize("family", FAMILIES)
def test_save_load_round_trip_still_matches_hf(family, tmp_path):
    overrides = VIVIT_CASES["frames8"] if family == "vivit" else TIMESFORMER_CASES["frames8"]
    hf = hf_model(family, overrides, num_labels=NUM_LABELS)
    reloaded = vitzoo.load(vitzoo.save(vitzoo.convert.from_hf(hf), tmp_path / f"{family}.safetensors"))
    x = hf_clip(hf)
    with torch.no_grad():
        assert max_diff(reloaded(to_vitzoo(x)), hf(pixel_values=x).logits) <= TOL


@pytest.mark.parametrize("family", FAMILIES)
def test_float64_conversion_is_exact_to_rounding(family):
    """In float64 the only differences left are rounding: a far tighter bound than the fp32 one."""
    overrides = VIVIT_CASES["gelu-no_qkv_bias-eps-mlp96"] if family == "vivit" else TIMESFORMER_CASES["default"]
    attn = "sdpa" if family == "vivit" else "eager"  # HF's eager ViViT attention takes its softmax in float32
    hf = hf_model(family, overrides, attn=attn, num_labels=NUM_LABELS).double()
    ours = vitzoo.convert.from_hf(hf)
    assert next(ours.parameters()).dtype == torch.float64
    x = hf_clip(hf).double()
    with torch.no_grad():
        assert max_diff(ours(to_vitzoo(x)), hf(pixel_values=x).logits) <= 1e-10


def _flip_time(param: torch.Tensor) -> None:
    param.copy_(param.flip(1))


def _swap_query_key(param: torch.Tensor) -> None:
    q, k, v = param.chunk(3, dim=0)
    param.copy_(torch.cat([k, q, v]))


@pytest.mark.parametrize(
    "family, key, corrupt",
    [
        ("vivit", "encoder.transformer.blocks.0.attn.qkv.weight", _swap_query_key),
        ("timesformer", "encoder.time_embed", _flip_time),
        ("timesformer", "encoder.blocks.1.temporal_attn.qkv.weight", _swap_query_key),
        ("timesformer", "encoder.blocks.0.temporal_fc.weight", torch.nn.init.zeros_),
    ],
)
def test_parity_check_detects_a_wrong_mapping(family, key, corrupt):
    """The 1e-4 bound is meaningful: one wrongly mapped tensor moves the logits by far more."""
    overrides = VIVIT_CASES["default"] if family == "vivit" else TIMESFORMER_CASES["default"]
    hf = hf_model(family, overrides, num_labels=NUM_LABELS)
    ours = vitzoo.convert.from_hf(hf)
    with torch.no_grad():
        corrupt(ours.state_dict()[key])
        x = hf_clip(hf)
        assert max_diff(ours(to_vitzoo(x)), hf(pixel_values=x).logits) > 100 * TOL


@pytest.mark.parametrize(
    "family, overrides, message",
    [
        ("timesformer", dict(attention_type="space_only"), "attention_type='space_only'"),
        ("timesformer", dict(attention_type="joint_space_time"), "attention_type='joint_space_time'"),
        ("timesformer", dict(patch_size=8, hidden_act="relu"), "hidden_act='relu'"),
        ("timesformer", dict(patch_size=8, image_size=[32, 48]), "non-square image_size"),
        ("vivit", dict(tubelet_size=[2, 8, 4]), r"tubelet_size=\[2, 8, 4\]"),
        ("vivit", dict(tubelet_size=[2, 8, 8], num_frames=5), "num_frames=5 not divisible"),
        ("vivit", dict(tubelet_size=[2, 8, 8], image_size=36), "image_size=36 not divisible"),
    ],
)
def test_unsupported_hf_options_raise_naming_them(family, overrides, message):
    config_name, head_name, _ = FAMILIES[family]
    cfg = getattr(transformers, config_name)(**{**TINY, **overrides})
    hf = getattr(transformers, head_name)(cfg)
    with pytest.raises(NotImplementedError, match=message):
        vitzoo.convert.from_hf(hf)


def test_other_models_are_refused_by_class():
    small = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    mae = transformers.ViTMAEModel(transformers.ViTMAEConfig(**small))
    with pytest.raises(TypeError, match="ViTMAEModel"):
        vitzoo.convert.from_hf(mae)
