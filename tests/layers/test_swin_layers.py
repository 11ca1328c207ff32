"""Swin layers against torchvision's own functions and an explicit softmax reference; plans, sizes, taps, FLOPs."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.swin_transformer import PatchMerging as TorchvisionPatchMerging
from torchvision.models.video import swin_transformer as tv3d

import vitzoo
from tests.helpers.reference import softmax_attention
from vitzoo.bench import Case, build_subject
from vitzoo.layers import swin_stage
from vitzoo.layers.patch_merging import PatchMerging
from vitzoo.layers.window_attention import WindowAttention
from vitzoo.layers.windows import relative_position_index, window_geometry, window_groups, window_plan
from vitzoo.models.swin import VideoSwin

WINDOW = (4, 3, 3)
GRIDS = [(4, 3, 3), (5, 7, 6), (2, 9, 4), (8, 6, 10), (1, 1, 1), (9, 3, 7)]


def _torchvision_geometry(grid, window, shifted):
    window, shift = tv3d._get_window_and_shift_size(
        [w // 2 if shifted else 0 for w in window], list(grid), list(window)
    )
    return tuple(window), tuple(shift), tv3d._compute_pad_size_3d(tuple(grid), tuple(window))


@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("shifted", [False, True])
def test_window_geometry_is_torchvisions(grid, shifted):
    geo = window_geometry(grid, WINDOW, shifted=shifted)
    assert (geo.window, geo.shift, geo.pad) == _torchvision_geometry(grid, WINDOW, shifted)


@pytest.mark.parametrize("grid", GRIDS)
def test_window_groups_masks_are_torchvisions_shift_mask(grid):
    """Each group's mask equals torchvision's mask of every window of the rolled grid in that group."""
    geo = window_geometry(grid, WINDOW, shifted=True)
    groups = window_groups(geo)
    counts = [p // w for p, w in zip(geo.padded, geo.window, strict=True)]
    if not geo.shifted:
        assert len(groups) == 1 and groups[0].mask is None
        return
    reference = tv3d._compute_attention_mask_3d(torch.zeros(1), geo.padded, geo.window, geo.shift)
    reference = reference.view(*counts, geo.window_tokens, geo.window_tokens)  # (nt, nh, nw, N, N)
    covered = torch.zeros(counts, dtype=torch.int)
    for group in groups:
        # rolled-grid window indices of the group along each axis: interior ones first, the wrapped one last
        ranges = []
        for part, n, s in zip(group.parts, counts, geo.shift, strict=True):
            wrapped = len(part.reads) == 2  # the window read from both ends of the axis
            ranges.append(range(n) if s == 0 else (range(n - 1, n) if wrapped else range(n - 1)))
        expected = group.mask if group.mask is not None else torch.zeros(geo.window_tokens, geo.window_tokens)
        for t, h, w in itertools.product(*ranges):
            torch.testing.assert_close(reference[t, h, w], expected, rtol=0, atol=0)
            covered[t, h, w] += 1
    assert (covered == 1).all()  # the groups partition the windows
    assert any(g.mask is not None for g in groups)  # negative control: some mask is not trivial


def test_relative_position_index_full_window_is_torchvisions():
    attn = tv3d.ShiftedWindowAttention3d(8, [2, 3, 4], [0, 0, 0], 2)
    torch.testing.assert_close(relative_position_index((2, 3, 4), (2, 3, 4)), attn.relative_position_index)


def test_clipped_window_index_modes():
    """torchvision's clipped-window bias is its full index's first N x N block: right when only time is clipped,
    not when a spatial axis is; ``"relative"`` always uses each pair's own offset."""
    full = relative_position_index((4, 3, 3), (4, 3, 3))
    time_clipped = (2, 3, 3)
    for mode in ("relative", "torchvision"):
        torch.testing.assert_close(relative_position_index(time_clipped, (4, 3, 3), clipped=mode), full[:18, :18])
    space_clipped = (4, 2, 3)
    positions = [t * 9 + h * 3 + w for t in range(4) for h in range(2) for w in range(3)]  # its tokens in the full
    geometric = full[positions][:, positions]
    torch.testing.assert_close(relative_position_index(space_clipped, (4, 3, 3), clipped="relative"), geometric)
    prefix = relative_position_index(space_clipped, (4, 3, 3), clipped="torchvision")
    torch.testing.assert_close(prefix, full[:24, :24])
    assert not torch.equal(prefix, geometric)


@pytest.mark.parametrize("size", [(2, 6, 6), (3, 5, 7)])
def test_patch_merging_is_torchvisions(size):
    ours = PatchMerging(dim=8, out_dim=16)
    theirs = TorchvisionPatchMerging(8, torch.nn.LayerNorm)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, *size, 8)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-6)
    assert ours(x).shape == (2, size[0], (size[1] + 1) // 2, (size[2] + 1) // 2, 16)


def _explicit_window_attention(x, attn, window, shift):
    """Roll, cut windows, softmax(q k^T / sqrt(d) + bias + region mask) v per window, written out; no vitzoo code
    except the bias table and index."""
    b, tp, hp, wp, c = x.shape
    heads = attn.num_heads
    rolled = torch.roll(x, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
    bias = attn.relative_position_bias_table[relative_position_index(window, attn.window)].permute(2, 0, 1)
    region = torch.zeros(tp, hp, wp, dtype=torch.long)
    for axis, (p, w, s) in enumerate(zip((tp, hp, wp), window, shift, strict=True)):
        if s:
            label = (torch.arange(p) >= p - w).long() + (torch.arange(p) >= p - s).long()
            region = region * 3 + label.view([-1 if i == axis else 1 for i in range(3)])
        else:
            region = region * 3
    out = torch.empty_like(rolled)
    for t0, h0, w0 in itertools.product(range(0, tp, window[0]), range(0, hp, window[1]), range(0, wp, window[2])):
        sl = (slice(t0, t0 + window[0]), slice(h0, h0 + window[1]), slice(w0, w0 + window[2]))
        tokens = rolled[:, sl[0], sl[1], sl[2]].reshape(b, -1, c)
        labels = region[sl].flatten()
        allowed = labels[:, None] == labels[None, :]
        qkv = (tokens @ attn.qkv.weight.T + attn.qkv.bias).reshape(b, -1, 3, heads, c // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # (B, H, N, d) each
        mask = bias + torch.where(allowed, 0.0, -100.0)
        o = softmax_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(b, -1, c)
        out[:, sl[0], sl[1], sl[2]] = (o @ attn.proj.weight.T + attn.proj.bias).reshape(b, *window, c)
    return torch.roll(out, shifts=shift, dims=(1, 2, 3))


@pytest.mark.parametrize("grid", [(4, 6, 6), (8, 9, 6), (4, 3, 3)])
@pytest.mark.parametrize("shifted", [False, True])
def test_window_attention_equals_an_explicit_softmax_per_window(grid, shifted):
    attn = WindowAttention(dim=8, num_heads=2, window=WINDOW).eval()
    plan = window_plan(grid, WINDOW, shifted=shifted, clipped="relative")
    x = torch.randn(2, *plan.geometry.padded, 8)
    with torch.no_grad():
        ours = attn(x, plan)
        ref = _explicit_window_attention(x, attn, plan.geometry.window, plan.geometry.shift)
    torch.testing.assert_close(ours, ref, rtol=0, atol=2e-6)


def test_plans_are_built_once_per_grid(monkeypatch):
    built = []
    real = swin_stage.window_plan
    monkeypatch.setattr(swin_stage, "window_plan", lambda *a, **k: built.append(a[0]) or real(*a, **k))
    model = vitzoo.create("video_swin_nano_4x2", dynamic_size=True).eval()
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        model(x)
        model(x)
    assert built == [(4, 8, 8), (4, 8, 8), (4, 4, 4), (4, 4, 4)]  # per stage: plain and shifted, first call only
    with torch.no_grad():
        model(torch.randn(1, 3, 6, 40, 40))
    assert len(built) == 8 and built[4:] == [(3, 10, 10)] * 2 + [(3, 5, 5)] * 2


@pytest.mark.parametrize("size", [(1, 1, 1), (3, 37, 53), (9, 20, 12)])
def test_any_clip_size_with_dynamic_size(size):
    model = vitzoo.create("video_swin_nano_4x2", dynamic_size=True, num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, *size)).shape == (2, 3)
    fixed = vitzoo.create("video_swin_nano_4x2", num_classes=3)
    with pytest.raises(ValueError, match="dynamic_size=True"):
        fixed(torch.randn(2, 3, *size))


def test_stage_taps_in_every_format():
    model = vitzoo.create("video_swin_micro_4x2", dynamic_size=True).eval()
    x = torch.randn(2, 3, 5, 40, 50)  # tokens (3, 10, 13) -> (3, 5, 7) -> (3, 3, 4)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        thwc = model.forward_intermediates(x, output_fmt="NTHWC", intermediates_only=True, norm=True)
        nlc = model.forward_intermediates(x, indices=[1], output_fmt="NLC", intermediates_only=True)
        early = model.forward_intermediates(x, indices=[0], stop_early=True)
    assert [tuple(m.shape) for m in maps] == [(2, 32, 3, 10, 13), (2, 64, 3, 5, 7), (2, 128, 3, 3, 4)]
    assert [tuple(m.shape) for m in thwc] == [(2, 3, 10, 13, 32), (2, 3, 5, 7, 64), (2, 3, 3, 4, 128)]
    torch.testing.assert_close(thwc[0], maps[0].movedim(1, -1), rtol=0, atol=0)  # norm: last stage only
    torch.testing.assert_close(thwc[-1], model.norm(maps[-1].movedim(1, -1)), rtol=0, atol=0)
    assert nlc[0].shape == (2, 3 * 5 * 7, 64)
    assert final.shape == (2, 36, 128) and early[0].shape == (2, 3 * 10 * 13, 32)


# ------------------------------------------------------------------------------------------- FLOPs
def test_flops_at_a_padded_size_equal_counted_matmuls(reference_attention):
    """Padding, clipping and shifted windows in every stage, for vitzoo and for torchvision at the same config."""
    reference_attention.enable()
    overrides = (("clipped_window_bias", "torchvision"), ("img_size", 44))  # tokens (3, 11, 11) -> (3, 6, 6)
    for impl in ("vitzoo", "torchvision_swin3d"):
        case = Case("video_swin_nano_4x2", impl=impl, batch=2, num_frames=6, overrides=overrides)
        subject = build_subject(case)
        counter = FlopCounterMode(display=False)
        with counter:
            subject.step()
        assert counter.get_total_flops() == subject.flops, case.impl


@pytest.mark.parametrize(
    ("name", "frames", "gmacs", "params"),
    [
        ("video_swin_tiny_4x2", 16, 43.882, 28158070),  # torchvision Swin3D_*_Weights meta: _ops, num_params
        ("video_swin_small_4x2", 16, 82.841, 49816678),
        ("video_swin_base_4x2", 16, 140.667, 88048984),
        ("video_swin_tiny_4x2", 32, 88, None),  # Video Swin paper, Table 1 (32 x 224^2, per view)
        ("video_swin_small_4x2", 32, 166, None),
        ("video_swin_base_4x2", 32, 282, None),
        ("swin_tiny_patch4_window7_224", 1, 4.491, 28288354),  # torchvision Swin_*_Weights meta
        ("swin_base_patch4_window7_224", 1, 15.431, 87768224),
    ],
)
def test_flops_and_parameters_match_published_figures(name, frames, gmacs, params):
    """Published Swin FLOPs are multiply-adds (fvcore's count): half of vitzoo's 2 * M * N * K FLOPs."""
    cfg = vitzoo.model_config(name, num_frames=frames)
    assert VideoSwin.flops(cfg).total / 2e9 == pytest.approx(gmacs, rel=5e-3 if gmacs > 50 else 1e-3)
    if params is not None:
        with torch.device("meta"):
            model = vitzoo.create(name)
        assert sum(p.numel() for p in model.parameters()) == params


def test_grad_checkpointing_gives_the_same_gradients():
    model = vitzoo.create("video_swin_nano_4x2", num_classes=3).train()
    x = torch.randn(2, 3, 8, 32, 32)
    model(x).sum().backward()
    expected = {k: p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad()
    model.set_grad_checkpointing(True)
    assert all(stage.grad_checkpointing for stage in model.layers)
    model(x).sum().backward()
    for k, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[k], rtol=1e-5, atol=1e-6, msg=k)


@pytest.mark.parametrize("shifted", [False, True])
def test_window_attention_gradients_in_training_equal_the_explicit_reference(shifted):
    """Training takes the fused-forward, recomputing-backward path; every parameter's gradient is checked."""
    attn = WindowAttention(dim=8, num_heads=2, window=WINDOW).double().train()
    plan = window_plan((8, 9, 6), WINDOW, shifted=shifted, clipped="relative")
    x = torch.randn(2, *plan.geometry.padded, 8, dtype=torch.float64)
    grad = torch.randn_like(x)
    ours = torch.autograd.grad(attn(x, plan), list(attn.parameters()), grad)
    ref = _explicit_window_attention(x, attn, plan.geometry.window, plan.geometry.shift)
    theirs = torch.autograd.grad(ref, list(attn.parameters()), grad)
    for (name, _), a, b in zip(attn.named_parameters(), ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10, msg=name)


@pytest.mark.parametrize("grid", GRIDS)
def test_group_gather_is_a_permutation_and_order_its_inverse(grid):
    plan = window_plan(grid, WINDOW, shifted=True, clipped="relative")
    tokens = plan.gather.numel()
    assert tokens == sum(plan.group_tokens) == torch.tensor(plan.geometry.padded).prod()
    torch.testing.assert_close(torch.sort(plan.gather).values, torch.arange(tokens), rtol=0, atol=0)
    torch.testing.assert_close(plan.gather[plan.order], torch.arange(tokens), rtol=0, atol=0)
