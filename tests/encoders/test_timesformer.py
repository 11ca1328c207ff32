"""TimeSformer (``encoder="divided"``) initialised from an image ViT, and what that initialisation preserves.

With ``time_embed`` and every ``temporal_fc`` at zero the temporal branch adds exactly nothing, so each block is
the ViT block applied frame by frame, except for one thing: the class token. Each frame's spatial attention
updates its own copy of the class token and the block keeps the *average* of the ``T`` updates, so from the
second block on, every frame attends to that shared, averaged class token instead of the one the ViT would
have computed for it. What is therefore exact (and tested here):

- depth 1: every frame's patch tokens equal the ViT's on that frame (the class token is the averaged one);
- any depth, a static clip (all frames equal): all ``T`` updates coincide, so every token, the class token
  included, and hence the features and the logits equal the ViT's on that frame;
- any depth, any clip: the model is equivariant to reordering the frames, and its features are invariant.

With distinct frames and depth >= 2 the per-frame patch tokens differ from the ViT's (tested too, as the
statement above would otherwise be unfounded).
"""

from __future__ import annotations

import logging

import pytest
import torch
from einops import rearrange

import vitzoo

NAME = "timesformer_nano_patch8_32"


def _perturbed(model):
    """Non-trivial weights (LayerNorm affine included) so that a wrong mapping cannot pass."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


@pytest.fixture(params=[1, 2], ids=["depth1", "depth2"])
def vit_file(request, tmp_path):
    vit = _perturbed(vitzoo.create("vit_nano_patch8_32", depth=request.param, num_classes=10))
    return vit, vitzoo.save(vit, tmp_path / "vit.safetensors")


def _timesformer(vit_file, **overrides):
    """The nano TimeSformer initialised from the fixture's ViT file (same depth, same 10-class head)."""
    vit, path = vit_file
    return vitzoo.create(NAME, pretrained=path, depth=vit.cfg.depth, num_classes=10, **overrides).eval()


def _per_frame(vit, clip):
    """The ViT's final tokens on every frame of ``clip (B, C, T, H, W)``: ``(B, T, 1 + N, D)``."""
    frames = rearrange(clip, "b c t h w -> (b t) c h w")
    return rearrange(vit.forward_features(frames), "(b t) l d -> b t l d", b=clip.shape[0])


def _features(model, clip):
    """Pooled features ``(B, D)`` and final tokens ``(B, 1 + T*N, D)`` of ``clip``."""
    tokens = model.forward_features(clip)
    return model.forward_head(tokens, pre_logits=True), tokens


def _patch_tokens(tokens, num_frames):
    """vitzoo's divided-encoder tokens ``(B, 1 + T*N, D)`` -> patch tokens ``(B, T, N, D)``."""
    return rearrange(tokens[:, 1:], "b (t n) d -> b t n d", t=num_frames)


def test_registered_geometry():
    base = vitzoo.model_config("timesformer_base_patch16_224")
    assert (base.num_frames, base.tubelet_size, base.img_size, base.patch_size) == (8, 1, 224, 16)
    assert (base.embed_dim, base.depth, base.num_heads, base.encoder) == (768, 12, 12, "divided")
    nano = vitzoo.model_config(NAME)
    assert (nano.num_frames, nano.img_size, nano.embed_dim, nano.depth) == (4, 32, 64, 2)


def test_default_vit_checkpoint_initialises_timesformer(tmp_path, caplog):
    """The plain recipe: save a registered ViT, create the TimeSformer from it."""
    path = vitzoo.save(vitzoo.create("vit_nano_patch8_32"), tmp_path / "vit.safetensors")
    with caplog.at_level(logging.INFO, logger="vitzoo"):
        model = vitzoo.create(NAME, pretrained=path, num_classes=5)
    assert "encoder.blocks.0.temporal_fc.weight" in caplog.text and "zeroed" in caplog.text
    assert model(torch.randn(2, 3, 4, 32, 32)).shape == (2, 5)


@pytest.mark.parametrize("temporal_init", ["copy", "zero"])
def test_vit_weights_land_where_timesformer_expects_them(vit_file, temporal_init):
    vit, _ = vit_file
    enc = _timesformer(vit_file, temporal_init=temporal_init).encoder
    same = lambda a, b: torch.testing.assert_close(a, b, rtol=0, atol=0)  # noqa: E731
    same(enc.cls_token, vit.cls_token)
    same(enc.pos_embed, vit.pos_embed)
    same(enc.norm.weight, vit.norm.weight)
    assert torch.all(enc.time_embed == 0)
    for ours, theirs in zip(enc.blocks, vit.blocks, strict=True):
        same(ours.attn.qkv.weight, theirs.attn.qkv.weight)
        same(ours.mlp.fc2.weight, theirs.mlp.fc2.weight)
        assert torch.all(ours.temporal_fc.weight == 0) and torch.all(ours.temporal_fc.bias == 0)
        copied = torch.equal(ours.temporal_attn.qkv.weight, theirs.attn.qkv.weight)
        assert copied == (temporal_init == "copy")
        assert torch.equal(ours.temporal_norm.weight, theirs.norm1.weight) == (temporal_init == "copy")


def test_static_clip_reduces_exactly_to_the_vit(vit_file):
    vit, _ = vit_file
    model = _timesformer(vit_file)
    frame = torch.randn(2, 3, 32, 32)
    clip = frame[:, :, None].expand(-1, -1, 4, -1, -1)  # (B, C, T, H, W), every frame the same
    with torch.no_grad():
        feats, tokens = _features(model, clip)
        ref = vit.forward_features(frame)  # (B, 1 + N, D)
        assert (_patch_tokens(tokens, 4) - ref[:, None, 1:]).abs().max().item() <= 1e-5
        assert (feats - ref[:, 0]).abs().max().item() <= 1e-5
        assert (model(clip) - vit(frame)).abs().max().item() <= 1e-5


def test_patch_tokens_equal_the_vit_per_frame_only_at_depth_one(vit_file):
    vit, _ = vit_file
    model = _timesformer(vit_file)
    clip = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        _, tokens = _features(model, clip)
        ref = _per_frame(vit, clip)  # (B, T, 1 + N, D)
    diff = (_patch_tokens(tokens, 4) - ref[:, :, 1:]).abs().max().item()
    if model.cfg.depth == 1:
        assert diff <= 1e-5
    else:  # the averaged class token reaches the patch tokens through the second block's attention
        assert diff > 1e-3


def test_class_token_is_the_average_not_the_per_frame_one(vit_file):
    vit, _ = vit_file
    model = _timesformer(vit_file)
    clip = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        feats, _ = _features(model, clip)  # (1, D)
        per_frame_cls = _per_frame(vit, clip)[0, :, 0]  # (T, D)
    assert (feats - per_frame_cls).abs().amax(dim=-1).min().item() > 1e-3


def test_frame_order_equivariance_at_init(vit_file):
    model = _timesformer(vit_file)
    clip = torch.randn(2, 3, 4, 32, 32)
    order = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        feats, tokens = _features(model, clip)
        feats_p, tokens_p = _features(model, clip[:, :, order])
    assert (feats_p - feats).abs().max().item() <= 1e-5
    assert (_patch_tokens(tokens_p, 4) - _patch_tokens(tokens, 4)[:, order]).abs().max().item() <= 1e-5


def test_frame_order_matters_once_time_embed_is_learned(vit_file):
    model = _timesformer(vit_file)
    with torch.no_grad():
        model.encoder.time_embed.normal_(std=0.5)
        clip = torch.randn(1, 3, 4, 32, 32)
        assert (model(clip) - model(clip.flip(2))).abs().max().item() > 1e-4


def test_zero_temporal_fc_still_receives_gradient(vit_file):
    """The branch is a no-op at init but not dead: ``temporal_fc`` gets gradient at the first step."""
    model = _timesformer(vit_file).train()
    model(torch.randn(2, 3, 4, 32, 32)).sum().backward()
    for blk in model.encoder.blocks:
        assert blk.temporal_fc.weight.grad.abs().sum().item() > 0


def test_fresh_model_temporal_branch_starts_at_zero():
    model = vitzoo.create(NAME, temporal_init="zero")
    for blk in model.encoder.blocks:
        assert torch.all(blk.temporal_fc.weight == 0) and torch.all(blk.temporal_fc.bias == 0)
        assert blk.temporal_attn.qkv.weight.abs().sum() > 0
    copy = vitzoo.create(NAME)  # registered with temporal_init="copy"
    for blk in copy.encoder.blocks:
        torch.testing.assert_close(blk.temporal_attn.qkv.weight, blk.attn.qkv.weight, rtol=0, atol=0)


def test_gradient_checkpointing_gives_the_same_outputs_and_grads():
    model = _perturbed(vitzoo.create(NAME, num_classes=3)).train()
    clip = torch.randn(2, 3, 4, 32, 32)
    model(clip).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.set_grad_checkpointing(True)
    model(clip).sum().backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, grads[n], rtol=1e-5, atol=1e-6)


def test_needs_a_class_token():
    with pytest.raises(ValueError, match="class_token=True"):
        vitzoo.create(NAME, class_token=False, global_pool="avg")
