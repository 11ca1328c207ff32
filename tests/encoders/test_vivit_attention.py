"""Factorised attention equals joint attention over all T*N tokens under block masks (plain softmax reference)."""

from __future__ import annotations

import torch

from tests.helpers.reference import layer_norm, masked_self_attention, mlp, space_time_masks
from vitzoo.config import VideoConfig
from vitzoo.encoders.factorised_dot_product import FactorisedDotProductBlock
from vitzoo.encoders.factorised_self_attention import FactorisedSelfAttentionBlock

T, N, D, H = 3, 4, 32, 4
CFG = VideoConfig(embed_dim=D, num_heads=H, depth=1, num_frames=T, tubelet_size=1, class_token=False, global_pool="avg")


def _randomise(module):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.2)


def test_factorised_self_attention_equals_masked_joint_attention():
    block = FactorisedSelfAttentionBlock(CFG).eval()
    _randomise(block)  # nothing zero: the temporal branch must matter
    x = torch.randn(2, T, N, D)
    same_frame, same_location = space_time_masks(T, N)
    flat = x.reshape(2, T * N, D)  # time-major, as vitzoo orders tokens
    flat = flat + masked_self_attention(layer_norm(flat, block.norm1), block.attn, same_frame)
    flat = flat + masked_self_attention(layer_norm(flat, block.temporal_norm), block.temporal_attn, same_location)
    flat = flat + mlp(layer_norm(flat, block.norm2), block.mlp)
    with torch.no_grad():
        torch.testing.assert_close(block(x).reshape(2, T * N, D), flat, rtol=1e-4, atol=1e-5)


def test_factorised_dot_product_equals_per_head_masked_joint_attention():
    block = FactorisedDotProductBlock(CFG).eval()
    _randomise(block)
    x = torch.randn(2, T, N, D)
    same_frame, same_location = space_time_masks(T, N)
    per_head = torch.stack([same_frame] * (H // 2) + [same_location] * (H // 2))  # (H, L, L)
    flat = x.reshape(2, T * N, D)
    flat = flat + masked_self_attention(layer_norm(flat, block.norm1), block.attn, per_head)
    flat = flat + mlp(layer_norm(flat, block.norm2), block.mlp)
    with torch.no_grad():
        torch.testing.assert_close(block(x).reshape(2, T * N, D), flat, rtol=1e-4, atol=1e-5)


def test_masks_are_not_trivially_equal():
    """Guard: the two masks differ, so swapping space and time in the code would fail the tests above."""
    same_frame, same_location = space_time_masks(T, N)
    assert not torch.equal(same_frame, same_location)
    block = FactorisedDotProductBlock(CFG).eval()
    _randomise(block)
    x = torch.randn(1, T, N, D)
    flat = x.reshape(1, T * N, D)
    swapped = torch.stack([same_location] * (H // 2) + [same_frame] * (H // 2))
    wrong = flat + masked_self_attention(layer_norm(flat, block.norm1), block.attn, swapped)
    wrong = wrong + mlp(layer_norm(wrong, block.norm2), block.mlp)
    with torch.no_grad():
        assert (block(x).reshape(1, T * N, D) - wrong).abs().max() > 1e-3
