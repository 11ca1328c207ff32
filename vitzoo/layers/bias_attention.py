"""Attention with a learned additive bias: fused ``scaled_dot_product_attention`` forward, recomputing backward.

``softmax(q k^T * scale + bias) v`` where the float ``bias`` (Swin's relative-position table, gathered) needs a
gradient. PyTorch's fused CPU attention kernel does not compute gradients for ``attn_mask``, so a bias that
requires grad sends ``scaled_dot_product_attention`` to its math path: the scores and probabilities are
materialised, ``q`` and ``k`` are copied once more (each pre-scaled by ``sqrt(scale)``), the probabilities
``(B, H, N, M)`` are kept for the backward pass, and a masked-row check (``all`` + ``where``) runs on every call.

:func:`attention_with_bias` instead runs the fused kernel forward and keeps only ``q, k, v`` and the bias; the
backward pass recomputes the probabilities, as FlashAttention does, and returns the bias gradient summed over the
dimensions it was broadcast along::

    S = q k^T * scale + bias,  P = softmax(S),  O = P v
    dV = P^T dO,  dP = dO v^T,  dS = P * (dP - rowsum(dP * P))
    dQ = dS k * scale,  dK = dS^T q * scale,  dBias = dS summed to the bias's shape

It is meant for training on CPU, where it measured faster and leaner than the math path on Video Swin (README,
"MViT and Video Swin against torchvision"); elsewhere, and whenever no gradient is needed, call SDPA directly.
Dropout is not supported here (use SDPA, which then takes the math path anyway).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable


class _BiasAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, scale: float):
        ctx.save_for_backward(q, k, v, bias)
        ctx.scale = scale
        # detached: SDPA picks its math path for a mask that requires grad, even with grad mode off
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias.detach(), scale=scale)  # (..., H, N, d)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        q, k, v, bias = ctx.saved_tensors
        scale = ctx.scale
        scores = torch.matmul(q * scale, k.transpose(-2, -1)).add_(bias)  # S (..., H, N, M)
        probs = torch.softmax(scores, -1, out=scores)  # P, recomputed in place (a fresh N x M buffer costs more)
        grad_v = torch.matmul(probs.transpose(-2, -1), grad_out)  # (..., H, M, d)
        grad_scores = torch.matmul(grad_out, v.transpose(-2, -1))  # dP (..., H, N, M)
        # dS = P * (dP - rowsum(dP * P)), written over dP
        torch.ops.aten._softmax_backward_data.out(grad_scores, probs, -1, probs.dtype, grad_input=grad_scores)
        del scores, probs
        grad_q = torch.matmul(grad_scores, k).mul_(scale)  # (..., H, N, d)
        grad_k = torch.matmul(grad_scores.transpose(-2, -1), q).mul_(scale)  # (..., H, M, d)
        grad_bias = grad_scores.sum_to_size(bias.shape) if ctx.needs_input_grad[3] else None
        return grad_q, grad_k, grad_v, grad_bias, None


def attention_with_bias(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, *, scale: float | None = None
) -> torch.Tensor:
    """``softmax(q k^T * scale + bias) v`` for ``q (..., H, N, d)``, ``k, v (..., H, M, d)`` and a float ``bias``
    broadcastable to ``(..., H, N, M)``; ``scale`` defaults to ``d ** -0.5``. Gradients reach ``q, k, v`` and the
    bias (once differentiable: no double backward)."""
    if not bias.is_floating_point():
        raise TypeError(f"bias has dtype {bias.dtype}; attention_with_bias takes a float bias (use SDPA for masks)")
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return _BiasAttention.apply(q, k, v, bias, scale)
