"""Unit tests of each checkpoint fix-up in ``vitzoo.checkpoints``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from vitzoo.checkpoints import (
    infer_vit_layout,
    inflate_patch_embed,
    resample_pos_embed,
    resample_temporal_pos_embed,
    spatial_pos_embed,
    tile_temporal_pos_embed,
)
from vitzoo.layers.pos_embed import resample_spacetime_pos_embed

W2D = torch.randn(8, 3, 4, 4)


def _embed3d(weight, clip):
    return F.conv3d(clip, weight, stride=weight.shape[2:])


def test_central_inflation_embeds_the_middle_frame():
    clip = torch.randn(1, 3, 4, 8, 8)  # two tubelets of t=2
    w3 = inflate_patch_embed(W2D, tubelet_size=2, mode="central")
    assert w3.shape == (8, 3, 2, 4, 4)
    out = _embed3d(w3, clip)  # (1, 8, 2, 2, 2)
    for k in range(2):
        torch.testing.assert_close(out[:, :, k], F.conv2d(clip[:, :, 2 * k + 1], W2D, stride=4))


def test_average_inflation_matches_2d_on_static_clip():
    frame = torch.randn(1, 3, 8, 8)
    clip = frame[:, :, None].repeat(1, 1, 3, 1, 1)
    out = _embed3d(inflate_patch_embed(W2D, tubelet_size=3, mode="average"), clip)
    torch.testing.assert_close(out[:, :, 0], F.conv2d(frame, W2D, stride=4), rtol=1e-5, atol=1e-5)


def test_repeat_inflation_scales_static_clip_by_t():
    frame = torch.randn(1, 3, 8, 8)
    clip = frame[:, :, None].repeat(1, 1, 3, 1, 1)
    out = _embed3d(inflate_patch_embed(W2D, tubelet_size=3, mode="repeat"), clip)
    torch.testing.assert_close(out[:, :, 0], 3 * F.conv2d(frame, W2D, stride=4), rtol=1e-5, atol=1e-4)


def test_inflation_rejects_bad_input():
    with pytest.raises(ValueError, match="tubelet_init"):
        inflate_patch_embed(W2D, tubelet_size=2, mode="middle")
    with pytest.raises(ValueError, match="2-D patch kernel"):
        inflate_patch_embed(torch.randn(8, 3, 2, 4, 4), tubelet_size=2)


def test_tile_temporal_pos_embed_repeats_space_and_keeps_cls():
    pe = torch.randn(1, 1 + 4, 6)
    tiled = tile_temporal_pos_embed(pe, num_tubelets=3, num_prefix_tokens=1)
    assert tiled.shape == (1, 1 + 12, 6)
    torch.testing.assert_close(tiled[:, 0], pe[:, 0])
    for t in range(3):
        torch.testing.assert_close(tiled[:, 1 + 4 * t : 1 + 4 * (t + 1)], pe[:, 1:])


def test_resample_pos_embed_identity_and_shape():
    pe = torch.randn(1, 1 + 16, 6)
    assert resample_pos_embed(pe, old_grid=(4, 4), new_grid=(4, 4), num_prefix_tokens=1) is pe
    out = resample_pos_embed(pe, old_grid=(4, 4), new_grid=(6, 6), num_prefix_tokens=1)
    assert out.shape == (1, 37, 6)
    torch.testing.assert_close(out[:, 0], pe[:, 0])
    with pytest.raises(ValueError, match="does not match grid"):
        resample_pos_embed(pe, old_grid=(5, 5), new_grid=(6, 6), num_prefix_tokens=1)


def test_resample_constant_table_stays_constant():
    pe = torch.ones(1, 16, 3) * 0.7
    out = resample_pos_embed(pe, old_grid=(4, 4), new_grid=(7, 7))
    torch.testing.assert_close(out, torch.full((1, 49, 3), 0.7), rtol=1e-4, atol=1e-4)


def test_resample_temporal_linear():
    pe = torch.arange(4.0).reshape(1, 4, 1)
    out = resample_temporal_pos_embed(pe, new_len=8)
    assert out.shape == (1, 8, 1)
    assert torch.all(out[0, 1:, 0] >= out[0, :-1, 0])  # monotone ramp stays monotone
    assert resample_temporal_pos_embed(pe, new_len=4) is pe


def test_resample_spacetime_roundtrip_shape():
    pe = torch.randn(1, 1 + 2 * 9, 5)
    out = resample_spacetime_pos_embed(pe, old_shape=(2, 3, 3), new_shape=(4, 2, 2), num_prefix_tokens=1)
    assert out.shape == (1, 1 + 4 * 4, 5)


@pytest.mark.parametrize(
    "keys, length, expected",
    [
        ({"cls_token"}, 1 + 16, ((4, 4), 1, True)),
        ({"cls_token"}, 16, ((4, 4), 1, False)),  # timm no_embed_class
        (set(), 16, ((4, 4), 0, True)),
    ],
)
def test_infer_vit_layout(keys, length, expected):
    sd = {"pos_embed": torch.zeros(1, length, 8), **{k: torch.zeros(1, 1, 8) for k in keys}}
    layout = infer_vit_layout(sd)
    assert (layout.grid, layout.num_prefix_tokens, layout.pos_embed_has_prefix) == expected


def test_infer_vit_layout_rejects_non_square():
    with pytest.raises(ValueError, match="square"):
        infer_vit_layout({"pos_embed": torch.zeros(1, 1 + 14, 8), "cls_token": torch.zeros(1, 1, 8)})


def test_spatial_pos_embed_drops_or_creates_prefix():
    layout = infer_vit_layout({"pos_embed": torch.zeros(1, 17, 8), "cls_token": torch.zeros(1, 1, 8)})
    pe = torch.randn(1, 17, 8)
    assert spatial_pos_embed(pe, layout, new_grid=(4, 4), keep_prefix=False).shape == (1, 16, 8)
    kept = spatial_pos_embed(pe, layout, new_grid=(2, 2), keep_prefix=True)
    assert kept.shape == (1, 5, 8) and torch.equal(kept[:, 0], pe[:, 0])
    no_cls = infer_vit_layout({"pos_embed": torch.zeros(1, 16, 8)})
    created = spatial_pos_embed(torch.randn(1, 16, 8), no_cls, new_grid=(4, 4), keep_prefix=True)
    assert created.shape == (1, 17, 8) and torch.all(created[:, 0] == 0)
