"""Video models initialised from image ViT checkpoints, and variable input sizes."""

from __future__ import annotations

import logging

import pytest
import torch
from einops import rearrange

import vitzoo
from tests.helpers.zoo import VIDEO_NANO
from vitzoo.config import VideoConfig


def _perturbed(model):
    """Random non-trivial weights (LayerNorm affine included) so a wrong mapping cannot pass."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


@pytest.fixture
def vit_file(tmp_path):
    vit = _perturbed(vitzoo.create("vit_nano_patch8_32", num_classes=10))
    return vit, vitzoo.save(vit, tmp_path / "vit.safetensors")


@pytest.fixture
def gap_vit_file(tmp_path):
    vit = _perturbed(
        vitzoo.create("vit_nano_patch8_32", num_classes=10, class_token=False, global_pool="avg", fc_norm=False)
    )
    return vit, vitzoo.save(vit, tmp_path / "vit_gap.safetensors")


def _frames(clip, tubelet):
    """The middle frame of every tubelet, as an image batch ``(B*T', C, H, W)``."""
    middle = clip[:, :, tubelet // 2 :: tubelet]  # (B, C, T', H, W)
    return rearrange(middle, "b c t h w -> (b t) c h w")


def test_fact_sa_reduces_exactly_to_source_vit_per_frame(gap_vit_file):
    vit, path = gap_vit_file
    model = vitzoo.create("vivit_fact_sa_nano_8x2", pretrained=path, num_frames=6, num_classes=10).eval()
    clip = torch.randn(2, 3, 6, 32, 32)
    with torch.no_grad():
        tokens = model.forward_features(clip)  # (B, T'*N, D)
        per_frame = vit.forward_features(_frames(clip, 2))  # (B*T', N, D)
    tokens = rearrange(tokens, "b (t n) d -> (b t) n d", t=3)
    assert (tokens - per_frame).abs().max().item() <= 1e-5


def test_fact_sa_copy_init_copies_spatial_attention(gap_vit_file):
    vit, path = gap_vit_file
    model = vitzoo.create("vivit_fact_sa_nano_8x2", pretrained=path, temporal_init="copy")
    for i, blk in enumerate(model.encoder.blocks):
        torch.testing.assert_close(blk.temporal_attn.qkv.weight, vit.blocks[i].attn.qkv.weight, rtol=0, atol=0)
        torch.testing.assert_close(blk.temporal_attn.proj.weight, vit.blocks[i].attn.proj.weight, rtol=0, atol=0)
        torch.testing.assert_close(blk.temporal_norm.weight, vit.blocks[i].norm1.weight, rtol=0, atol=0)


def test_fact_enc_spatial_stage_reduces_exactly_to_source_vit(vit_file):
    vit, path = vit_file
    model = vitzoo.create("vivit_fact_enc_nano_8x2", pretrained=path, num_frames=8).eval()
    clip = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        spatial = model.encoder.forward_spatial(model.patch_embed(clip))  # (B, T', D)
        ref = vit.forward_features(_frames(clip, 2))[:, 0]  # class token per frame
    assert (rearrange(spatial, "b t d -> (b t) d") - ref).abs().max().item() <= 1e-5


def test_vtn_spatial_stage_is_the_vit_on_every_frame(vit_file):
    vit, path = vit_file
    model = vitzoo.create("vtn_nano_patch8_32", pretrained=path).eval()
    clip = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        spatial = model.encoder.forward_spatial(model.patch_embed(clip))
        ref = vit.forward_features(_frames(clip, 1))[:, 0]
    assert (rearrange(spatial, "b t d -> (b t) d") - ref).abs().max().item() <= 1e-5


def test_joint_static_clip_with_central_init_matches_vit_tokens_pattern(vit_file):
    """Joint attention: pos table is the ViT's tiled over time, class token and blocks copied."""
    vit, path = vit_file
    model = vitzoo.create("vivit_joint_nano_8x2", pretrained=path, num_frames=6)
    tr = model.encoder.transformer
    n = 16
    for t in range(3):
        torch.testing.assert_close(tr.pos_embed[:, 1 + t * n : 1 + (t + 1) * n], vit.pos_embed[:, 1:], rtol=0, atol=0)
    torch.testing.assert_close(tr.cls_token, vit.cls_token, rtol=0, atol=0)
    torch.testing.assert_close(tr.blocks[1].mlp.fc2.weight, vit.blocks[1].mlp.fc2.weight, rtol=0, atol=0)


def test_fact_dot_reuses_vit_attention_weights(vit_file):
    vit, path = vit_file
    model = vitzoo.create("vivit_fact_dot_nano_8x2", pretrained=path)
    for ours, theirs in zip(model.encoder.blocks, vit.blocks, strict=True):
        torch.testing.assert_close(ours.attn.qkv.weight, theirs.attn.qkv.weight, rtol=0, atol=0)
    assert torch.all(model.encoder.temporal_pos_embed == 0)


@pytest.mark.parametrize("name", [n for n in VIDEO_NANO if isinstance(vitzoo.model_config(n), VideoConfig)])
def test_every_video_model_inits_from_vit_and_logs_each_key(name, vit_file, caplog):
    _, path = vit_file
    with caplog.at_level(logging.INFO, logger="vitzoo"):
        model = vitzoo.create(name, pretrained=path, num_frames=8, img_size=48, num_classes=3)
    text = caplog.text
    assert "patch_embed.proj.weight" in text and "inflated" in text
    assert "resampled" in text and "head re-initialised: checkpoint has 10 classes, model has 3" in text
    out = model(torch.randn(1, 3, 8, 48, 48))
    assert out.shape == (1, 3)


def test_head_kept_when_class_count_matches(vit_file):
    vit, path = vit_file
    model = vitzoo.create("vivit_fact_enc_nano_8x2", pretrained=path, num_classes=10)
    torch.testing.assert_close(model.head.weight, vit.head.weight, rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["central", "average", "repeat"])
def test_tubelet_init_modes_reach_the_kernel(vit_file, mode):
    vit, path = vit_file
    model = vitzoo.create("vivit_fact_enc_nano_8x2", pretrained=path, tubelet_init=mode)
    w3 = model.patch_embed.proj.weight  # (D, C, t, p, p)
    w2 = vit.patch_embed.proj.weight
    expected = {"central": (torch.zeros_like(w2), w2), "average": (w2 / 2, w2 / 2), "repeat": (w2, w2)}[mode]
    torch.testing.assert_close(w3[:, :, 0], expected[0], rtol=0, atol=0)
    torch.testing.assert_close(w3[:, :, 1], expected[1], rtol=0, atol=0)


def test_video_checkpoint_into_other_video_model_names_the_encoders(tmp_path):
    src = vitzoo.save(vitzoo.create("vivit_joint_nano_8x2"), tmp_path / "joint.safetensors")
    with pytest.raises(ValueError, match="has .*encoder=joint.* but the model .*encoder=fact_sa"):
        vitzoo.create("vivit_fact_sa_nano_8x2", pretrained=src)


def test_missing_pretrained_file_lists_available(tmp_path, monkeypatch):
    monkeypatch.setenv("VITZOO_WEIGHTS_DIR", str(tmp_path))
    vitzoo.save(vitzoo.create("vit_nano_patch8_32"), tmp_path / "shipped.safetensors")
    with pytest.raises(FileNotFoundError, match="shipped"):
        vitzoo.create("vit_nano_patch8_32", pretrained="nope")
    model = vitzoo.create("vit_nano_patch8_32", pretrained="shipped")  # by name from the weights folder
    assert model.cfg.num_classes == 1000


@pytest.mark.parametrize("name", VIDEO_NANO)
def test_resample_to_other_clip_size(name):
    model = vitzoo.create(name, num_classes=2).eval()
    frames, size = model.cfg.num_frames, model.cfg.img_size
    model.resample(num_frames=2 * frames, img_size=size + 16)
    assert model(torch.randn(1, 3, 2 * frames, size + 16, size + 16)).shape == (1, 2)
    with pytest.raises(ValueError, match=r"input \(B, C, T, H, W\) = \(1, 3, 4, 32, 32\) does not match"):
        model(torch.randn(1, 3, 4, 32, 32))


def test_base_32x224_runs_at_16x160_after_resample():
    model = vitzoo.create("vivit_fact_enc", depth=1, temporal_depth=1, num_classes=2).eval()
    assert (model.cfg.num_frames, model.cfg.img_size) == (32, 224)
    model.resample(num_frames=16, img_size=160)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 16, 160, 160)).shape == (1, 2)


def test_vit_input_size_mismatch_raises_or_is_dynamic():
    vit = vitzoo.create("vit_nano_patch8_32")
    with pytest.raises(ValueError, match="does not match"):
        vit(torch.randn(1, 3, 48, 48))
    dyn = vitzoo.create("vit_nano_patch8_32", dynamic_img_size=True)
    assert dyn(torch.randn(1, 3, 48, 40)).shape == (1, 1000)
    vit.resample(img_size=48)
    assert vit(torch.randn(1, 3, 48, 48)).shape == (1, 1000)


def test_fresh_fact_sa_temporal_branch_follows_temporal_init():
    zero = vitzoo.create("vivit_fact_sa_nano_8x2")
    copy = vitzoo.create("vivit_fact_sa_nano_8x2", temporal_init="copy")
    for blk in zero.encoder.blocks:
        assert torch.all(blk.temporal_attn.proj.weight == 0) and torch.all(blk.temporal_attn.proj.bias == 0)
    for blk in copy.encoder.blocks:
        torch.testing.assert_close(blk.temporal_attn.qkv.weight, blk.attn.qkv.weight, rtol=0, atol=0)
        assert blk.temporal_attn.proj.weight.abs().sum() > 0


def test_frame_average_is_the_mean_of_per_frame_vit_features_and_ignores_order(vit_file):
    vit, path = vit_file
    model = vitzoo.create("frame_avg_nano_patch8_32", pretrained=path).eval()
    clip = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        feats = model.forward_head(model.forward_features(clip), pre_logits=True)
        ref = rearrange(vit.forward_features(_frames(clip, 1))[:, 0], "(b t) d -> b t d", b=2).mean(dim=1)
        reversed_feats = model.forward_head(model.forward_features(clip.flip(2)), pre_logits=True)
    assert (feats - ref).abs().max().item() <= 1e-5
    torch.testing.assert_close(reversed_feats, feats, rtol=0, atol=1e-5)
