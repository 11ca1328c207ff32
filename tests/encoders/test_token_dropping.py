"""Token dropping (``forward_visible``): the image ViT and the joint ViViT encode the visible tokens only."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange

import vitzoo
from vitzoo.data.masking import RandomMask, TubeMask, draw_masks
from vitzoo.models.mae_target import patchify

TOL = 1e-5


def _joint(**overrides):
    return vitzoo.create("vivit_joint_nano_8x2", num_classes=0, **overrides).eval()


def _vit(**overrides):
    return vitzoo.create("vit_nano_patch8_32", num_classes=0, **overrides).eval()


def _masks(model, ratio, n=2, kind=RandomMask):
    grid = (2, 4, 4) if model.modality == "video" else (4, 4)
    return draw_masks(kind(grid, ratio), range(n), seed=1)


@pytest.mark.parametrize("make", [_joint, _vit, lambda: _joint(class_token=False, global_pool="avg")])
def test_nothing_masked_equals_the_full_forward(make):
    model = make()
    x = torch.randn(2, *model.input_shape)
    with torch.no_grad():
        full = model.forward_features(x)
        visible = model.forward_visible(x, torch.zeros(2, full.shape[1] - model.num_prefix_tokens, dtype=torch.bool))
    torch.testing.assert_close(visible, full, rtol=0, atol=TOL)


def _reference_joint(model, x, mask):
    """HF VideoMAE's way: positions added to every token, then boolean indexing, then the blocks."""
    tr = model.encoder.transformer
    tokens = rearrange(model.patch_embed(x), "b t h w d -> b (t h w) d")  # (B, L, D)
    p = tr.num_prefix_tokens
    tokens = tokens + tr.pos_embed[:, p:]
    tokens = tokens[~mask].reshape(x.shape[0], -1, tokens.shape[-1])  # visible, grid order
    cls = (tr.cls_token + tr.pos_embed[:, :p]).expand(x.shape[0], -1, -1)
    return tr.norm(tr.blocks(torch.cat([cls, tokens], dim=1)))


def test_joint_visible_tokens_equal_a_boolean_index_reference():
    model = _joint()
    x = torch.randn(3, *model.input_shape)
    mask = _masks(model, 0.75, n=3)
    with torch.no_grad():
        ours = model.forward_visible(x, mask)
        assert ours.shape == (3, 1 + 8, 64)
        torch.testing.assert_close(ours, _reference_joint(model, x, mask), rtol=0, atol=TOL)
        # a batch of different masks gives what each sample gives alone
        alone = torch.cat([model.forward_visible(x[i : i + 1], mask[i : i + 1]) for i in range(3)])
        torch.testing.assert_close(ours, alone, rtol=0, atol=TOL)
        # negative control: another mask gives other tokens
        assert (model.forward_visible(x, mask.roll(1, dims=1)) - ours).abs().max() > 1e-2


@pytest.mark.parametrize("make", [_joint, _vit])
def test_gradients_reach_only_the_visible_pixels(make):
    model = make()
    x = torch.randn(2, *model.input_shape, requires_grad=True)
    mask = _masks(model, 0.75)
    model.forward_visible(x, mask).square().sum().backward()
    patch = (2, 8, 8) if model.modality == "video" else (8, 8)
    grad = patchify(x.grad, patch).abs().amax(dim=(2, 3))  # (B, L): largest gradient in each token's pixels
    assert torch.all(grad[mask] == 0)
    assert torch.all(grad[~mask] > 0)


def test_vit_prefix_tokens_and_no_embed_class():
    for model in (_vit(reg_tokens=2), _vit(no_embed_class=True, class_token=True)):
        x = torch.randn(2, *model.input_shape)
        with torch.no_grad():
            out = model.forward_visible(x, _masks(model, 0.5))
            full = model.forward_visible(x, torch.zeros(2, 16, dtype=torch.bool))
        assert out.shape == (2, model.num_prefix_tokens + 8, model.num_features)
        torch.testing.assert_close(full, model.forward_features(x), rtol=0, atol=TOL)


def test_tube_masks_on_the_joint_encoder():
    model = _joint()
    mask = _masks(model, 0.5, kind=TubeMask)
    with torch.no_grad():
        assert model.forward_visible(torch.randn(2, *model.input_shape), mask).shape == (2, 1 + 16, 64)


def test_bad_masks_are_refused_in_one_line():
    model = _joint()
    x = torch.randn(2, *model.input_shape)
    uneven = torch.zeros(2, 32, dtype=torch.bool)
    uneven[0, :3] = True
    with pytest.raises(ValueError, match=r"hides \[0, 3\] tokens in different samples"):
        model.forward_visible(x, uneven)
    with pytest.raises(ValueError, match=r"expected \(B, 32\) bool"):
        model.forward_visible(x, torch.zeros(2, 31, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        model.forward_visible(x, torch.zeros(2, 32))


@pytest.mark.parametrize("name", ["vivit_fact_enc_nano_8x2", "vtn_nano_patch8_32"])
def test_factorised_encoder_drops_the_masked_positions_of_every_frame_under_tube_masking(name):
    model = vitzoo.create(name, num_classes=0).eval()
    t, h, w = model.cfg.grid_thw
    x = torch.randn(2, *model.input_shape)
    mask = draw_masks(TubeMask((t, h, w), 0.5), range(2), seed=0)
    enc = model.encoder
    with torch.no_grad():
        full = model.forward_visible(x, torch.zeros(2, t * h * w, dtype=torch.bool))
        torch.testing.assert_close(full, model.forward_features(x), rtol=0, atol=TOL)
        ours = model.forward_visible(x, mask)
        # reference: each frame's visible tokens by boolean indexing, then the spatial and temporal stages
        frames = rearrange(model.patch_embed(x), "b t h w d -> (b t) (h w) d")
        sp, p = enc.spatial, enc.spatial.num_prefix_tokens
        keep = ~mask.reshape(2, t, h * w).reshape(2 * t, h * w)
        tokens = (frames + sp.pos_embed[:, p:])[keep].reshape(2 * t, -1, frames.shape[-1])
        tokens = torch.cat([(sp.cls_token + sp.pos_embed[:, :p]).expand(2 * t, -1, -1), tokens], dim=1)
        summary = sp.pool(sp.norm(sp.blocks(tokens)), model.cfg.global_pool).reshape(2, t, -1)
        torch.testing.assert_close(ours, enc.temporal(summary), rtol=0, atol=TOL)
        with pytest.raises(ValueError, match="only under tube masking"):
            model.forward_visible(x, draw_masks(RandomMask((t, h, w), 0.5), range(2), seed=0))


@pytest.mark.parametrize("name", ["timesformer_nano_patch8_32", "vivit_fact_sa_nano_8x2", "frame_avg_nano_patch8_32"])
def test_other_encoders_refuse_naming_the_joint_encoder(name):
    model = vitzoo.create(name, num_classes=0)
    x = torch.randn(1, *model.input_shape)
    length = torch.Size(model.cfg.grid_thw).numel()
    with pytest.raises(NotImplementedError, match="cannot run on the visible tokens only.*encoder='joint'"):
        model.forward_visible(x, torch.zeros(1, length, dtype=torch.bool))
