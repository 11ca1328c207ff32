"""The model contract, checked on every registered model: features, head, intermediates, sizes, facts."""

from __future__ import annotations

import copy

import pytest
import torch

import vitzoo
from tests.helpers.zoo import VIDEO_NANO, random_input, tiny_input_overrides
from vitzoo.models import family_of

NAMES = vitzoo.list_models()
# What no_weight_decay() may name: position tables (absolute, separable, relative) and class tokens.
POSITION_AND_TOKEN_NAMES = {"pos_embed", "cls_token", "time_embed", "temporal_pos_embed", "pos_embed_spatial",
                            "pos_embed_temporal", "pos_embed_class", "rel_pos_h", "rel_pos_w", "rel_pos_t",
                            "relative_position_bias_table", "reg_token", "dist_token"}  # fmt: skip


def _tiny(name: str, **extra):
    return vitzoo.create(name, **{**tiny_input_overrides(name, depth=2), **extra}).eval()


@pytest.mark.parametrize("name", NAMES)
def test_interface_answers_the_same_questions_for_every_model(name):
    model = _tiny(name)
    x = random_input(model)
    assert model.modality in ("image", "video") and len(model.input_shape) == (4 if model.modality == "video" else 3)
    assert model.input_shape == family_of(model.cfg).input_shape_for(model.cfg)
    with torch.no_grad():
        tokens = model.forward_features(x)  # (B, P + L, D), or (B, h, w, D) for output_fmt NHWC
        pooled = model.forward_head(tokens, pre_logits=True)
        logits = model(x)
    assert tokens.ndim == len(model.output_fmt) and tokens.shape[0] == 2 and tokens.shape[-1] == model.num_features
    assert pooled.shape == (2, model.num_features) and logits.shape == (2, 3)
    torch.testing.assert_close(model.forward_head(tokens), logits, rtol=0, atol=0)
    model.reset_classifier(0)
    with torch.no_grad():
        torch.testing.assert_close(model(x), pooled, rtol=0, atol=0)  # no head: forward returns pooled features
    model.reset_classifier(5)
    assert model(x).shape == (2, 5) and model.cfg.num_classes == 5
    decay_free = model.no_weight_decay()
    assert decay_free and decay_free <= dict(model.named_parameters()).keys()
    assert all(name.rsplit(".", 1)[-1] in POSITION_AND_TOKEN_NAMES for name in decay_free)


@pytest.mark.parametrize("name", NAMES)
def test_forward_intermediates_shapes_and_final_features(name):
    model = _tiny(name)
    x = random_input(model)
    video = model.modality == "video"
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        last = model.forward_intermediates(x, indices=1, output_fmt="NTHWC" if video else "NHWC", norm=True,
                                           intermediates_only=True)  # fmt: skip
        flat = model.forward_intermediates(x, indices=[0, -1], output_fmt="NLC", intermediates_only=True)
        torch.testing.assert_close(final, model.forward_features(x), rtol=0, atol=0)
    assert len(maps) == model.num_taps and len(last) == 1 and len(flat) == 2
    for fmap in maps:  # hierarchical models (Swin) tap stages of other widths; the last has num_features
        assert fmap.ndim == (5 if video else 4) and fmap.shape[0] == 2
    assert maps[-1].shape[1] == model.num_features
    torch.testing.assert_close(torch.movedim(maps[0], 1, -1).flatten(1, -2), flat[0], rtol=0, atol=0)
    assert last[0].shape[-1] == model.num_features and last[0].shape[1:-1] == maps[-1].shape[2:]


def test_intermediates_of_a_video_model_are_its_token_grid():
    model = _tiny("vivit_joint_nano_8x2", num_frames=6, img_size=(16, 24))
    x = torch.randn(2, 3, 6, 16, 24)
    with torch.no_grad():
        maps = model.forward_intermediates(x, intermediates_only=True)
        with_prefix = model.forward_intermediates(x, indices=1, return_prefix_tokens=True, intermediates_only=True)
    assert [m.shape for m in maps] == [(2, 64, 3, 2, 3)] * 2  # (B, D, T', h, w)
    fmap, prefix = with_prefix[0]
    assert prefix.shape == (2, 1, 64)  # the class token
    torch.testing.assert_close(fmap, maps[-1], rtol=0, atol=0)


def test_fact_enc_taps_cover_both_stages_and_stop_early():
    model = _tiny("vivit_fact_enc_nano_8x2", temporal_depth=2)
    x = random_input(model)
    with torch.no_grad():
        maps = model.forward_intermediates(x, intermediates_only=True)
        early = model.forward_intermediates(x, indices=[0], stop_early=True, intermediates_only=True)
    assert model.num_taps == 4
    assert [tuple(m.shape[2:]) for m in maps] == [(2, 2, 2), (2, 2, 2), (2, 1, 1), (2, 1, 1)]
    torch.testing.assert_close(early[0], maps[0], rtol=0, atol=0)


def test_intermediates_reject_bad_arguments():
    model = _tiny("vit_nano_patch8_32")
    x = random_input(model)
    with pytest.raises(ValueError, match="output_fmt='NCTHW'; expected one of 'NCHW', 'NHWC', 'NLC'"):
        model.forward_intermediates(x, output_fmt="NCTHW")
    with pytest.raises(ValueError, match=r"indices=\[5\]: .*out of range .*has 2 taps"):
        model.forward_intermediates(x, indices=[5])


@pytest.mark.parametrize("name", VIDEO_NANO)
def test_non_square_frames(name):
    cfg = vitzoo.model_config(name)
    _, mh, mw = family_of(cfg)(cfg).size_multiple()
    h, w = 2 * mh, 3 * mw
    model = vitzoo.create(name, img_size=(h, w), num_classes=4).eval()
    assert model.input_shape == (3, cfg.num_frames, h, w)
    with torch.no_grad():
        assert model(torch.randn(2, 3, cfg.num_frames, h, w)).shape == (2, 4)
    with pytest.raises(ValueError, match="does not match the model's size"):
        model(torch.randn(2, 3, cfg.num_frames, w, h))


@pytest.mark.parametrize("name", [*VIDEO_NANO, "vit_nano_patch8_32"])
def test_dynamic_size_equals_resample_then_fixed_forward(name):
    model = vitzoo.create(name, num_classes=4, dynamic_size=True).eval()
    with torch.no_grad():
        for p in model.parameters():  # every position table non-trivial (zero-initialised ones too)
            p.add_(torch.randn_like(p) * 0.02)
    cfg, video = model.cfg, model.modality == "video"
    mh, mw = model.size_multiple()[-2:]
    h, w = 3 * mh, 5 * mw
    frames = 2 * cfg.num_frames if video else None
    x = torch.randn(2, 3, *((frames,) if video else ()), h, w)
    fixed = copy.deepcopy(model)
    fixed.cfg = copy.deepcopy(cfg)
    fixed.cfg.dynamic_size = False
    fixed.resample(**({"num_frames": frames} if video else {}), img_size=(h, w))
    with torch.no_grad():
        torch.testing.assert_close(model(x), fixed(x), rtol=0, atol=1e-6)
        assert model(torch.randn(2, *model.input_shape)).shape == (2, 4)  # and still at its own size


def test_dynamic_size_needs_the_switch_and_divisible_sizes():
    model = vitzoo.create("vivit_fact_sa_nano_8x2")
    with pytest.raises(ValueError, match="dynamic_size=True"):
        model(torch.randn(1, 3, 4, 40, 40))
    dyn = vitzoo.create("vivit_fact_sa_nano_8x2", dynamic_size=True)
    with pytest.raises(ValueError, match=r"multiples of \(2, 8, 8\)"):
        dyn(torch.randn(1, 3, 5, 40, 40))


def test_old_dynamic_img_size_name_still_works(tmp_path):
    model = vitzoo.create("vit_nano_patch8_32", dynamic_img_size=True)
    assert model.cfg.dynamic_size and model.cfg.dynamic_img_size
    assert model(torch.randn(1, 3, 48, 40)).shape == (1, 1000)


@pytest.mark.parametrize("name", vitzoo.list_models("*nano*"))
def test_empty_batch_gives_empty_output(name):
    model = vitzoo.create(name, num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(0, *model.input_shape)).shape == (0, 3)


def test_family_facts_live_with_the_family():
    """FLOPs, token counts and the benchmark architecture key are answered by the model class."""
    cfg = vitzoo.model_config("vivit_fact_enc_nano_8x2")
    cls = family_of(cfg)
    assert cls.architecture(cfg) == "fact_enc" and cls.num_tokens(cfg) == 2 * 4 * 4
    assert cls.flops(cfg).total > 0
    assert (
        family_of(vitzoo.model_config("vit_nano_patch8_32")).architecture(vitzoo.model_config("vit_nano_patch8_32"))
        == "image"
    )


@pytest.mark.parametrize("name", [n for n in VIDEO_NANO if vitzoo.model_config(n).__class__.__name__ == "VideoConfig"])
def test_pre_norm_is_built_or_refused_never_ignored(name):
    cfg = vitzoo.model_config(name)
    try:
        model = vitzoo.create(name, pre_norm=True)
    except ValueError as exc:
        assert f"the {cfg.encoder!r} encoder has none" in str(exc)
        return
    norms = [n for n, m in model.named_modules() if n.endswith("norm_pre") and isinstance(m, torch.nn.LayerNorm)]
    assert norms, f"{name}: pre_norm=True built no norm_pre"
