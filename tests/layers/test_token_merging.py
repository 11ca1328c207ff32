"""Token merging (ToMe) against a reference written here from the paper, applied to timm's own ViT.

The reference runs timm's ``VisionTransformer`` block by block: attention written out (softmax of
``q k^T / sqrt(d) + log size``), then ToMe's bipartite soft matching done token by token in Python loops (split by
alternating positions, prefix tokens held out, cosine similarity of the keys averaged over heads, the ``r`` best
``A`` tokens merged into their best ``B`` partners by a size-weighted average), then timm's MLP. The new sequence
is ``[prefix, unmerged A in order, B]`` as in ToMe's code. No vitzoo code runs in the reference.
"""

from __future__ import annotations

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer as TimmViT

import vitzoo
import vitzoo.convert
from tests.helpers.reference import apply_plan, reference_plan
from vitzoo.layers.token_merging import bipartite_soft_matching, decreasing_schedule, merge_schedule, merge_wavg

DIM, DEPTH, HEADS = 32, 3, 2


def reference_merge(x, size, keys, r, prefix):
    """One sample: ``x (L, D)``, ``size (L,)``, ``keys (L, d)`` -> merged ``x``, ``size`` (loops, from the paper)."""
    return apply_plan(reference_plan(keys, r, prefix), x, size, prefix)


def reference_forward(model: TimmViT, images, schedule, *, prop_attn: bool):
    """timm's ViT with ToMe between attention and MLP of every block; avg pooling weighted by token sizes."""
    x = model._pos_embed(model.patch_embed(images))  # (B, P + N, D)
    prefix = model.num_prefix_tokens
    size = torch.ones(x.shape[:2])
    for blk, r in zip(model.blocks, schedule, strict=True):
        attn = blk.attn
        b, length, dim = x.shape
        qkv = attn.qkv(blk.norm1(x)).reshape(b, length, 3, attn.num_heads, dim // attn.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # (B, H, L, d) each
        logits = q @ k.transpose(-2, -1) / (dim // attn.num_heads) ** 0.5
        if prop_attn:
            logits = logits + size.log()[:, None, None, :]
        out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(b, length, dim)
        x = x + blk.ls1(attn.proj(out))
        if r:
            pairs = [reference_merge(x[i], size[i], k[i].mean(0), r, prefix) for i in range(b)]
            x, size = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
        x = x + blk.ls2(blk.mlp(blk.norm2(x)))
    x = model.norm(x)
    if model.global_pool == "token":
        pooled = x[:, 0]
    else:
        w = size[:, prefix:, None]
        pooled = (x[:, prefix:] * w).sum(1) / w.sum(1)
    return x, size, model.head(model.fc_norm(pooled))


def twins(**options):
    """A vitzoo ViT and timm's ViT with the same weights."""
    torch.manual_seed(0)
    class_token = options.get("class_token", True)
    pool = "token" if class_token else "avg"
    ours = vitzoo.create(
        "vit_nano_patch8_32", embed_dim=DIM, depth=DEPTH, num_heads=HEADS, num_classes=5, global_pool=pool, **options
    ).eval()
    theirs = TimmViT(
        img_size=32, patch_size=8, embed_dim=DIM, depth=DEPTH, num_heads=HEADS, num_classes=5, global_pool=pool,
        class_token=class_token, reg_tokens=options.get("reg_tokens", 0), fc_norm=None,
    ).eval()  # fmt: skip
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


@pytest.mark.parametrize("prop_attn", [True, False])
@pytest.mark.parametrize(
    "options",
    [{}, {"class_token": False}, pytest.param({"reg_tokens": 2}, marks=pytest.mark.slow)],
    ids=["cls", "no-cls", "cls+registers"],
)
def test_vit_with_merging_equals_the_reference_on_timms_vit(options, prop_attn):
    ours, theirs = twins(**options)
    schedule = [3, 2, 4]
    ours.set_token_merging(schedule, prop_attn=prop_attn)
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        features, logits = ours.forward_features(images), None
        logits = ours.forward_head(features)
        ref_features, ref_size, ref_logits = reference_forward(theirs, images, schedule, prop_attn=prop_attn)
    assert features.shape == (3, theirs.num_prefix_tokens + 16 - sum(schedule), DIM)
    torch.testing.assert_close(features, ref_features, atol=1e-5, rtol=0)
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.token_sizes[..., 0], ref_size, atol=0, rtol=0)
    assert (ours.token_sizes.sum(dim=1) == theirs.num_prefix_tokens + 16).all()  # sizes sum to the token count


def test_reference_fails_when_the_split_is_shifted(monkeypatch):
    """Negative control: the parity above can fail (B tokens taken as A, as a prefix-blind split would)."""
    ours, theirs = twins()
    ours.set_token_merging(4)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref, _, _ = reference_forward(theirs, images, [4] * DEPTH, prop_attn=True)
        # prefix count 0 for the split: the class token joins A and the patch parity shifts
        ours._merging = type(ours._merging)(ours._merging.schedule, True, 0)
        shifted = ours.forward_features(images)
    assert shifted.shape != ref.shape or not torch.allclose(shifted, ref, atol=1e-3)


def test_r_zero_is_bit_identical_to_no_merging():
    ours, _ = twins()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain = ours(images)
        ours.set_token_merging([0, 0, 0])
        assert not ours.merging
        zero = ours(images)
    assert torch.equal(plain, zero)


def test_matching_merges_r_tokens_keeps_prefix_and_sizes():
    torch.manual_seed(0)
    x, keys = torch.randn(2, 11, 6), torch.randn(2, 11, 4)
    merge = bipartite_soft_matching(keys, 3, num_prefix_tokens=1)
    out, size = merge_wavg(merge, x, None)
    assert out.shape == (2, 8, 6) and size.shape == (2, 8, 1)
    assert torch.equal(out[:, 0], x[:, 0]) and (size[:, 0] == 1).all()  # the class token is never merged
    assert (size.sum(dim=1) == 11).all()
    assert bipartite_soft_matching(keys, 0) is None
    # r is capped at half the non-prefix tokens (ToMe's rule): 10 tokens -> at most 5 merged
    assert merge_wavg(bipartite_soft_matching(keys, 99, 1), x, None)[0].shape[1] == 6


def test_schedule_rules():
    assert merge_schedule(2, 3) == (2, 2, 2)
    assert merge_schedule([1], 3) == (1, 0, 0)
    with pytest.raises(ValueError, match="lists 4 blocks"):
        merge_schedule([1, 1, 1, 1], 3)


def test_decreasing_schedule_front_loads_the_same_total():
    assert decreasing_schedule(144, 12) == (22, 20, 18, 17, 15, 13, 11, 9, 7, 6, 4, 2)
    for total, depth in [(48, 4), (7, 3), (0, 2), (5, 1), (1000, 12)]:
        schedule = decreasing_schedule(total, depth)
        assert len(schedule) == depth and sum(schedule) == total
        assert all(a >= b for a, b in zip(schedule, schedule[1:], strict=False))
    with pytest.raises(ValueError, match="need total >= 0 and depth >= 1"):
        decreasing_schedule(4, 0)
    model = vitzoo.create("vit_nano_patch8_32", num_classes=2, token_merging=decreasing_schedule(6, 2)).eval()
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
    assert model.forward_features(torch.randn(1, 3, 32, 32)).shape[1] == 1 + 16 - 6


def test_from_timm_passes_token_merging_through():
    ours, theirs = twins()
    converted = vitzoo.convert.from_timm(theirs, token_merging=[3, 2, 4]).eval()
    ours.set_token_merging([3, 2, 4])
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert converted.merging and torch.equal(converted(images), ours(images))
