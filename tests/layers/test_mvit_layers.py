"""MViT's layers against independent references: token pooling, decomposed relative positions (torchvision's
own function), the distance-table cache, and the model under plain-softmax attention."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

import vitzoo
from vitzoo.layers.rel_pos import (
    RelPosIndex,
    augment_with_rel_pos,
    key_coordinates,
    rel_pos_terms,
    relative_distance,
    resize_table,
)
from vitzoo.layers.token_pool import pool_output_size, pool_tokens


def test_pool_tokens_keeps_prefix_and_pools_the_grid_like_a_plain_conv():
    conv = nn.Conv3d(8, 8, 3, stride=(1, 2, 2), padding=1, groups=8, bias=False)
    x = torch.randn(2, 3, 1 + 4 * 6 * 5, 8)  # (B, H, P + T*h*w, d)
    out, grid = pool_tokens(x, (4, 6, 5), conv, num_prefix_tokens=1)
    assert grid == (4, 3, 3) == pool_output_size((4, 6, 5), (3, 3, 3), (1, 2, 2))
    maps = x[:, :, 1:].reshape(6, 4, 6, 5, 8).permute(0, 4, 1, 2, 3)  # channels-first, the textbook way
    expected = conv(maps).flatten(2).transpose(1, 2).reshape(2, 3, 4 * 3 * 3, 8)
    torch.testing.assert_close(out[:, :, 1:], expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out[:, :, :1], x[:, :, :1], rtol=0, atol=0)


def test_relative_distances_equal_torchvisions_float_arithmetic():
    """Index tables built with tensor ratios (export-friendly) truncate exactly like torchvision's float scalars."""
    for q in range(1, 17):
        for k in range(1, 17):
            q_ratio, k_ratio = max(k / q, 1.0), max(q / k, 1.0)
            expected = torch.arange(q)[:, None] * q_ratio - (torch.arange(k)[None, :] + (1.0 - k)) * k_ratio
            assert torch.equal(relative_distance(q, k), expected.long()), (q, k)


def test_relative_distances_by_hand():
    assert relative_distance(3, 3).tolist() == [[2, 1, 0], [3, 2, 1], [4, 3, 2]]  # i - j + 2
    assert relative_distance(4, 2).tolist() == [[2, 0], [3, 1], [4, 2], [5, 3]]  # keys on a 2x coarser grid


@pytest.mark.parametrize(
    ("q_grid", "k_grid", "lengths"),
    [((2, 4, 4), (2, 2, 2), (3, 7, 7)), ((2, 4, 6), (1, 2, 3), (3, 11, 11)), ((1, 2, 2), (1, 2, 2), (5, 9, 9))],
)
def test_rel_pos_bias_equals_torchvision(q_grid, k_grid, lengths):
    """The axis terms times the keys' one-hot coordinates are the bias torchvision's _add_rel_pos adds to a zero
    score matrix (tables resized at run time too); ``augment_with_rel_pos`` puts it inside the dot products."""
    from torchvision.models.video.mvit import _add_rel_pos

    lt, lh, lw = lengths
    tables = (torch.randn(lt, 16), torch.randn(lh, 16), torch.randn(lw, 16))
    lq, lk = 1 + torch.tensor(q_grid).prod().item(), 1 + torch.tensor(k_grid).prod().item()
    q, k, v = torch.randn(2, 3, lq, 16), torch.randn(2, 3, lk, 16), torch.randn(2, 3, lk, 16)
    expected = _add_rel_pos(torch.zeros(2, 3, lq, lk), q, q_grid, k_grid, tables[1], tables[2], tables[0])
    terms = rel_pos_terms(q, q_grid, k_grid, tables, RelPosIndex(), num_prefix_tokens=1)
    bias = terms @ key_coordinates(k_grid, 1, dtype=q.dtype, device=q.device).T  # (B, H, Lq, Lk)
    torch.testing.assert_close(bias, expected, rtol=1e-5, atol=1e-5)
    assert not bias[:, :, 0].any() and not bias[:, :, :, 0].any()  # the class token gets no bias
    q2, k2, v2 = augment_with_rel_pos(q, k, v, q_grid, k_grid, tables, RelPosIndex(), num_prefix_tokens=1)
    scores = q @ k.transpose(-2, -1) / 4.0 + expected  # d = 16
    torch.testing.assert_close(q2 @ k2.transpose(-2, -1), scores, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(v2[..., :16], v, rtol=0, atol=0)
    assert v2.shape[-1] == q2.shape[-1] == k2.shape[-1] == 16 + sum(k_grid) and not v2[..., 16:].any()


def test_distance_tables_are_built_once_per_grid_pair_and_not_while_tracing():
    model = vitzoo.create("mvitv2_nano_4x2").eval()
    x = torch.randn(1, *model.input_shape)
    with torch.no_grad():
        torch.export.export(model, (x,))
        assert len(model.rel_index) == 0  # nothing built under tracing was kept
        model(x)
        pairs = len(model.rel_index)
        first = model.rel_index((2, 8, 8), (2, 2, 2), x.device)
        model(x)
    assert pairs == 2  # stage 1: 8x8 queries to 2x2 keys; stage 2: 4x4 queries to 2x2 keys
    assert len(model.rel_index) == pairs and model.rel_index((2, 8, 8), (2, 2, 2), x.device) is first


def test_resizing_a_table_to_a_symbolic_length_adds_no_guard_on_it():
    """Compiled with dynamic sizes, lengths on both sides of the table's own (5, 7, 9 against 7) share one graph:
    comparing the symbolic length with the table's would guard on it (MViTv2 recompiled at every clip size)."""
    from torch._dynamo.testing import CompileCounter

    table = torch.randn(7, 4)
    counter = CompileCounter()
    resize = torch.compile(lambda x: resize_table(table, 2 * x.shape[0] - 1), backend=counter, dynamic=True)
    for n in (3, 4, 5):
        out = resize(torch.zeros(n))
        torch.testing.assert_close(out, resize_table(table, 2 * n - 1))
    torch.testing.assert_close(resize(torch.zeros(4)), table)  # the table's own length: the identity
    assert counter.frame_count == 1


def test_key_coordinates_are_built_once_per_key_grid(monkeypatch):
    from vitzoo.layers import rel_pos

    built = []
    real = rel_pos.key_coordinates
    monkeypatch.setattr(rel_pos, "key_coordinates", lambda grid, *a, **k: built.append(grid) or real(grid, *a, **k))
    model = vitzoo.create("mvitv2_nano_4x2").eval()
    x = torch.randn(1, *model.input_shape)
    with torch.no_grad():
        model(x)
        first = list(built)
        model(x)
    assert first and len(set(first)) == len(first)  # one build per key grid, not per block
    assert built == first  # the second forward builds none


@pytest.mark.parametrize("name", ["mvitv1_nano_4x2", "mvitv2_nano_4x2"])
def test_model_equals_plain_softmax_attention(name, reference_attention):
    """SDPA with the relative positions inside its dot products equals softmax(q k^T / sqrt(d) + bias) v written
    out (the reference sees the extended channels: what is checked is SDPA's kernel against explicit softmax)."""
    model = vitzoo.create(name).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        x = torch.randn(2, *model.input_shape)
        fused = model(x)
        reference_attention.enable()
        plain = model(x)
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-5)


def test_residual_pooling_leaves_the_class_row_alone_unless_asked():
    from vitzoo.layers.pooling_attention import PoolingAttention

    def attn(with_cls: bool) -> PoolingAttention:
        torch.manual_seed(0)
        return PoolingAttention(dim=8, dim_out=8, num_heads=2, kernel_q=(3, 3, 3), kernel_kv=(3, 3, 3),
                                residual_pool=True, residual_with_cls=with_cls)  # fmt: skip

    x = torch.randn(2, 1 + 2 * 4 * 4, 8)
    without, with_cls = attn(False), attn(True)
    out_a, _ = without(x, (2, 4, 4))
    out_b, _ = with_cls(x, (2, 4, 4))
    torch.testing.assert_close(out_a[:, 1:], out_b[:, 1:], rtol=0, atol=0)
    q = without.norm_q(rearrange(without.qkv(x), "b n (three y d) -> three b y n d", three=3, y=2)[0][:, :, :1])
    added = F.linear(rearrange(q, "b y n d -> b n (y d)"), without.proj.weight)  # the class token's pooled query
    torch.testing.assert_close(out_b[:, :1] - out_a[:, :1], added, rtol=1e-5, atol=1e-5)
