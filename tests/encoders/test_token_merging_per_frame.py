"""Token merging with the same positions merged in every frame: TimeSformer (divided), ViViT Models 3 and 4.

The reference is written here from the algorithm, with loops: in every block the attentions run written out
(softmax of ``q k^T / sqrt(d)``, plus ``log size`` of each key in the spatial attention with proportional
attention), then ONE ToMe matching per clip over the spatial positions (A/B alternation with the class token
counted, cosine similarity of the spatial keys averaged over heads and over frames, the ``r`` best ``A`` positions
merged into their best ``B`` partners), applied to each frame on its own by a size-weighted average; then the MLP.
Only the modules' weights (linear layers, norms, tables) come from vitzoo; no vitzoo merging or attention code runs.
"""

from __future__ import annotations

import pytest
import torch

import vitzoo
from tests.helpers.hub_sources import perturbed
from tests.helpers.reference import apply_plan, reference_plan
from vitzoo.layers.token_merging import frame_shared_matching

FAMILIES = ["timesformer_nano_patch8_32", "vivit_fact_sa_nano_8x2", "vivit_fact_dot_nano_8x2"]
SCHEDULE = (3, 2)  # the nano models have depth 2 and 4 x 4 positions per frame


# ----------------------------------------------------------------------------------- the reference
def attention(q, k, v, bias=None):
    """``q, k, v (..., L, d)`` -> softmax(q k^T / sqrt(d) + bias) v, written out."""
    logits = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if bias is not None:
        logits = logits + bias
    return logits.softmax(dim=-1) @ v


def heads(attn, x):
    """``x (..., L, D)`` -> q, k, v ``(..., H, L, d)`` from the layer's ``qkv`` weights."""
    qkv = attn.qkv(x).unflatten(-1, (3, attn.num_heads, -1))  # (..., L, 3, H, d)
    q, k, v = qkv.movedim(-3, 0).transpose(-3, -2)  # (..., H, L, d) each
    return q, k, v


def self_attention(attn, x, bias=None):
    """Multi-head self-attention ``(..., L, D)`` -> ``(out (..., L, D), keys (..., H, L, d))``."""
    q, k, v = heads(attn, x)
    out = attention(q, k, v, bias).transpose(-3, -2).flatten(-2)  # (..., L, D)
    return attn.proj(out), k


def merge_clip(tokens, size, keys, r, prefix):
    """``tokens (B, T, P + N, C)``, ``size (B, P + N)``, spatial keys ``(B, T, P + N, d)`` averaged over heads ->
    every frame merged with one plan per clip (made on the keys averaged over frames)."""
    out, sizes = [], []
    for b in range(tokens.shape[0]):
        plan = reference_plan(keys[b].mean(dim=0), r, prefix)
        frames = [apply_plan(plan, tokens[b, t], size[b], prefix) for t in range(tokens.shape[1])]
        out.append(torch.stack([f[0] for f in frames]))
        sizes.append(frames[0][1])
        assert all(torch.equal(f[1], sizes[-1]) for f in frames)
    return torch.stack(out), torch.stack(sizes)


def log_size(size, prop_attn, frame_axis=False):
    """The spatial attention's bias ``(B, 1, 1, L)`` (``(B, 1, 1, 1, L)`` with a frame axis) for sizes ``(B, L)``."""
    if not prop_attn:
        return None
    return size.log()[:, None, None, None, :] if frame_axis else size.log()[:, None, None, :]


def reference_timesformer(enc, grid, schedule, prop_attn):
    """TimeSformer with ToMe: ``grid (B, T, h, w, D)`` -> tokens ``(B, 1 + T*N', D)`` and sizes ``(B, 1 + N')``."""
    b, t = grid.shape[:2]
    patches = grid.flatten(2, 3) + enc.pos_embed[:, None, 1:] + enc.time_embed[:, :, None]  # (B, T, N, D)
    cls = (enc.cls_token + enc.pos_embed[:, :1])[:, 0].expand(b, -1)  # (B, D)
    size = torch.ones(b, 1 + patches.shape[2])
    for blk, r in zip(enc.blocks, schedule, strict=True):
        time_out, _ = self_attention(blk.temporal_attn, blk.temporal_norm(patches.transpose(1, 2)))  # (B, N, T, D)
        patches = patches + blk.temporal_fc(time_out.transpose(1, 2))
        cls_updates, outs, keys = [], [], []
        for f in range(t):  # spatial attention in each frame, with the class token
            seq = torch.cat([cls[:, None], patches[:, f]], dim=1)  # (B, 1 + N, D)
            out, k = self_attention(blk.attn, blk.norm1(seq), log_size(size, prop_attn))
            cls_updates.append(out[:, 0])
            outs.append(out[:, 1:])
            keys.append(k.mean(dim=1))  # (B, 1 + N, d)
        cls = cls + torch.stack(cls_updates).mean(dim=0)
        patches = patches + torch.stack(outs, dim=1)
        if r:
            seqs = torch.cat([cls[:, None, None].expand(-1, t, -1, -1), patches], dim=2)  # (B, T, 1 + N, D)
            merged, size = merge_clip(seqs, size, torch.stack(keys, dim=1), r, 1)
            patches = merged[:, :, 1:]
        x = torch.cat([cls[:, None], patches.flatten(1, 2)], dim=1)  # (B, 1 + T*N', D)
        x = x + blk.mlp(blk.norm2(x))
        cls, patches = x[:, 0], x[:, 1:].unflatten(1, (t, -1))
    return enc.norm(x), size


def reference_fact_sa(enc, grid, schedule, prop_attn):
    """ViViT Model 3 with ToMe: ``grid (B, T, h, w, D)`` -> ``(B, T*N', D)`` and sizes ``(B, N')``."""
    x = grid.flatten(2, 3) + enc.pos_embed[:, None] + enc.temporal_pos_embed[:, :, None]  # (B, T, N, D)
    size = torch.ones(x.shape[0], x.shape[2])
    for blk, r in zip(enc.blocks, schedule, strict=True):
        out, k = self_attention(blk.attn, blk.norm1(x), log_size(size, prop_attn, frame_axis=True))  # (B, T, N, D)
        x = x + out
        out, _ = self_attention(blk.temporal_attn, blk.temporal_norm(x.transpose(1, 2)))  # (B, N, T, D): no bias
        x = x + out.transpose(1, 2)
        if r:
            x, size = merge_clip(x, size, k.mean(dim=2), r, 0)
        x = x + blk.mlp(blk.norm2(x))
    return enc.norm(x).flatten(1, 2), size


def reference_fact_dot(enc, grid, schedule, prop_attn):
    """ViViT Model 4 with ToMe: the first half of the heads in space (with the log sizes), the rest in time."""
    x = grid.flatten(2, 3) + enc.pos_embed[:, None] + enc.temporal_pos_embed[:, :, None]  # (B, T, N, D)
    size = torch.ones(x.shape[0], x.shape[2])
    for blk, r in zip(enc.blocks, schedule, strict=True):
        q, k, v = heads(blk.attn, blk.norm1(x))  # (B, T, H, N, d)
        half = q.shape[2] // 2
        space = attention(q[:, :, :half], k[:, :, :half], v[:, :, :half], log_size(size, prop_attn, frame_axis=True))
        tq, tk, tv = (z[:, :, half:].permute(0, 3, 2, 1, 4) for z in (q, k, v))  # (B, N, H/2, T, d)
        time = attention(tq, tk, tv).permute(0, 3, 2, 1, 4)  # (B, T, H/2, N, d)
        out = torch.cat([space, time], dim=2).transpose(2, 3).flatten(-2)  # (B, T, N, D)
        x = x + blk.attn.proj(out)
        if r:
            x, size = merge_clip(x, size, k[:, :, :half].mean(dim=2), r, 0)
        x = x + blk.mlp(blk.norm2(x))
    return enc.norm(x).flatten(1, 2), size


REFERENCES = {"divided": reference_timesformer, "fact_sa": reference_fact_sa, "fact_dot": reference_fact_dot}


# ----------------------------------------------------------------------------------- tests
def _build(name, **overrides):
    torch.manual_seed(0)
    return perturbed(vitzoo.create(name, num_classes=3, **overrides))  # temporal parts no longer start at zero


def _clip(model, batch=2):
    return torch.randn(batch, *model.input_shape, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("prop_attn", [True, False])
@pytest.mark.parametrize("name", FAMILIES)
def test_encoder_matches_the_reference(name, prop_attn):
    model = _build(name, token_merging=SCHEDULE, token_merging_prop_attn=prop_attn)
    enc = model.encoder
    with torch.no_grad():
        grid = model.patch_embed(_clip(model))  # (B, T, h, w, D)
        ours = enc(grid)
        expected, size = REFERENCES[model.cfg.encoder](enc, grid, SCHEDULE, prop_attn)
    t, p = grid.shape[1], enc.num_prefix_tokens
    assert ours.shape == expected.shape == (2, p + t * (16 - sum(SCHEDULE)), 64)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)
    sizes = torch.cat([size[:, :p], size[:, p:].repeat(1, t)], dim=1)[..., None]  # (B, P + T*N', 1)
    assert torch.equal(enc.token_sizes, sizes)


@pytest.mark.parametrize("name", FAMILIES)
def test_r_zero_is_the_unmerged_path_and_sizes_follow_the_schedule(name):
    model = _build(name)
    x = _clip(model)
    t, h, w = model.cfg.grid_thw
    p = model.num_prefix_tokens
    with torch.no_grad():
        plain = model.forward_features(x)
        model.set_token_merging([0, 0])
        assert torch.equal(model.forward_features(x), plain) and not model.merging
        model.set_token_merging([5, 20])  # the second block is capped at half its 11 positions: 5
        merged = model.forward_features(x)
    n = h * w - 5 - 5
    assert merged.shape[1] == p + t * n
    sizes = model.token_sizes  # (B, P + T*N', 1)
    assert sizes.shape == (2, p + t * n, 1)
    per_frame = sizes[:, p:, 0].unflatten(1, (t, n))  # (B, T, N')
    assert (per_frame.sum(dim=-1) == h * w).all()  # every frame's positions stand for its h*w tubelets
    assert (per_frame == per_frame[:, :1]).all() and (sizes[:, :p] == 1).all()


def test_the_same_positions_merge_in_every_frame():
    """Frames whose keys match differently still merge one plan: one-hot position tokens stay equal in all frames."""
    b, t, n = 2, 3, 8
    keys = torch.randn(b, t, n, 4, generator=torch.Generator().manual_seed(1))  # (B, T, N, d), each frame different
    x = torch.eye(n).expand(b, t, n, n)  # (B, T, N, N): token i is the indicator of position i, in every frame
    merged, size = frame_shared_matching(keys, 3, 0)(x, None)  # (B, T, N - 3, N), (B, N - 3, 1)
    assert merged.shape == (b, t, n - 3, n) and size.shape == (b, n - 3, 1)
    assert (merged == merged[:, :1]).all()  # the same positions averaged in every frame
    members = merged[:, 0] * size  # (B, N - 3, N): which positions each merged token holds
    assert torch.equal(members.round(), members.round().clamp(0, 1)) and (members.sum(dim=1).round() == 1).all()
    assert torch.equal(members.sum(dim=-1, keepdim=True).round(), size)
    # the plan is the one made on the frame-averaged keys
    expected, _ = merge_clip(x, torch.ones(b, n), keys, 3, 0)
    torch.testing.assert_close(merged, expected)


@pytest.mark.parametrize("name", FAMILIES)
def test_training_step_with_merging(name):
    model = _build(name, token_merging=2).train()
    model.set_grad_checkpointing(True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _clip(model), torch.tensor([0, 2])
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    opt.step()
    assert model.token_sizes.shape[1] == model.num_prefix_tokens + model.cfg.grid_thw[0] * (16 - 2 * 2)
