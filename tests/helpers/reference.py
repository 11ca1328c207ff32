"""Reference implementations used only by tests: plain softmax attention, no vitzoo code."""

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
