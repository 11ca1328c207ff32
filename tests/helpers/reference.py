"""Reference implementations used only by tests: plain softmax attention and ToMe's matching and merge written
from the paper with loops; no vitzoo code."""

from __future__ import annotations

import torch


def softmax_attention(q, k, v, attn_mask=None, dropout_p=0.0, scale=None, **_):
    """``softmax(q k^T * scale + mask) v`` computed explicitly (a boolean mask marks allowed pairs); ``scale``
    defaults to ``1 / sqrt(d)``, as SDPA's."""
    assert dropout_p == 0.0, "the reference path is for eval-mode comparisons"
    scores = q @ k.transpose(-2, -1)
    scores = scores / q.shape[-1] ** 0.5 if scale is None else scores * scale
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    return scores.softmax(dim=-1) @ v


def layer_norm(x, module):
    """LayerNorm with a module's parameters, written out."""
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + module.eps) * module.weight + module.bias


def masked_self_attention(x, attn, mask):
    """Multi-head self-attention over ``x (B, L, D)`` with an explicit boolean ``mask`` of allowed pairs.

    ``mask`` is ``(L, L)`` (all heads) or ``(H, L, L)`` (one per head). Uses only ``attn``'s weights.
    """
    b, length, dim = x.shape
    h = attn.num_heads
    qkv = x @ attn.qkv.weight.T + attn.qkv.bias  # (B, L, 3D)
    q, k, v = qkv.reshape(b, length, 3, h, dim // h).permute(2, 0, 3, 1, 4)  # (B, H, L, d) each
    out = softmax_attention(q, k, v, attn_mask=mask)  # (B, H, L, d)
    out = out.transpose(1, 2).reshape(b, length, dim)
    return out @ attn.proj.weight.T + attn.proj.bias


def mlp(x, module):
    """fc1 -> exact GELU -> fc2 with a module's parameters."""
    hidden = torch.nn.functional.gelu(x @ module.fc1.weight.T + module.fc1.bias)
    return hidden @ module.fc2.weight.T + module.fc2.bias


def space_time_masks(t: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean ``(T*N, T*N)`` masks over time-major tokens: same frame, and same spatial location."""
    frame = torch.arange(t).repeat_interleave(n)
    location = torch.arange(n).repeat(t)
    return frame[:, None] == frame[None, :], location[:, None] == location[None, :]


def reference_plan(keys, r, prefix):
    """One clip's frame-averaged keys ``(P + N, d)`` -> the kept ``A`` positions and each ``B`` with its merged ``A``s
    (positions count the prefix, as ToMe's code)."""
    positions = range(prefix, keys.shape[0])
    set_a = [i for i in positions if i % 2 == 0]
    set_b = [i for i in positions if i % 2 == 1]
    r = min(r, len(positions) // 2)
    unit = keys / keys.norm(dim=-1, keepdim=True)
    best = {}
    for a in set_a:
        sims = [float(unit[a] @ unit[b]) for b in set_b]
        j = max(range(len(set_b)), key=lambda i: sims[i])
        best[a] = (sims[j], set_b[j])
    merged = sorted(set_a, key=lambda a: -best[a][0])[:r]
    kept = [a for a in set_a if a not in merged]
    return kept, [(b, [a for a in merged if best[a][1] == b]) for b in set_b]


def apply_plan(plan, x, size, prefix):
    """One frame's tokens ``(P + N, C)`` and sizes ``(P + N,)`` -> merged by the plan (size-weighted average)."""
    kept, groups = plan
    rows = [x[i] for i in range(prefix)] + [x[a] for a in kept]
    sizes = [size[i] for i in range(prefix)] + [size[a] for a in kept]
    for b, merged in groups:
        members = [b, *merged]
        total = sum(size[i] for i in members)
        rows.append(sum(size[i] * x[i] for i in members) / total)
        sizes.append(total)
    return torch.stack(rows), torch.stack(sizes)
