"""``attention_with_bias``: fused forward, recomputing backward, against explicit softmax attention."""

from __future__ import annotations

import pytest
import torch
from torch.profiler import profile

from tests.helpers.reference import softmax_attention
from vitzoo.layers.bias_attention import attention_with_bias


def _inputs(bias_shape, *, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(3, 2, 5, 4, generator=gen, dtype=dtype)
    k, v = (torch.randn(3, 2, 6, 4, generator=gen, dtype=dtype) for _ in range(2))
    bias = torch.randn(*bias_shape, generator=gen, dtype=dtype)
    return [t.requires_grad_() for t in (q, k, v, bias)]


@pytest.mark.parametrize("bias_shape", [(3, 2, 5, 6), (1, 2, 5, 6), (2, 5, 6), (5, 6)])
def test_values_and_gradients_equal_explicit_softmax_attention(bias_shape):
    """Every input's gradient, the bias summed over the axes it was broadcast along."""
    q, k, v, bias = _inputs(bias_shape)
    out = attention_with_bias(q, k, v, bias)
    ref = softmax_attention(q, k, v, attn_mask=bias)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    grad = torch.randn_like(out)
    ours = torch.autograd.grad(out, (q, k, v, bias), grad)
    theirs = torch.autograd.grad(ref, (q, k, v, bias), grad)
    for name, a, b in zip("qkv" + "b", ours, theirs, strict=True):
        assert a.shape == b.shape, name
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12, msg=name)
    assert ours[3].abs().sum() > 0  # negative control: the bias gradient is not trivially zero


def test_gradcheck():
    assert torch.autograd.gradcheck(attention_with_bias, tuple(_inputs((1, 2, 5, 6))))


def test_bias_without_gradient_and_explicit_scale():
    q, k, v, bias = _inputs((2, 5, 6))
    bias = bias.detach()
    out = attention_with_bias(q, k, v, bias, scale=0.3)
    ref = softmax_attention(q, k, v, attn_mask=bias, scale=0.3)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    gq = torch.autograd.grad(out.sum(), q)[0]
    torch.testing.assert_close(gq, torch.autograd.grad(ref.sum(), q)[0], rtol=0, atol=1e-12)


def test_forward_uses_the_fused_kernel_not_the_math_path():
    """The reason this exists: SDPA with a bias that requires grad takes its math path."""
    q, k, v, bias = _inputs((1, 2, 5, 6), dtype=torch.float32)
    with profile() as ours:
        attention_with_bias(q, k, v, bias)
    with profile() as plain:
        torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    assert "aten::_scaled_dot_product_attention_math" not in {e.key for e in ours.key_averages()}
    assert "aten::_scaled_dot_product_attention_math" in {e.key for e in plain.key_averages()}  # control


def test_an_integer_or_boolean_mask_is_refused():
    q, k, v, _ = _inputs((1,))
    with pytest.raises(TypeError, match="float bias"):
        attention_with_bias(q, k, v, torch.ones(5, 6, dtype=torch.bool))


def test_float32_and_bfloat16_match_the_reference_within_their_precision():
    for dtype, atol in ((torch.float32, 2e-5), (torch.bfloat16, 3e-2)):
        q, k, v, bias = _inputs((1, 2, 5, 6), dtype=torch.float64, seed=1)
        low = [t.detach().to(dtype).requires_grad_() for t in (q, k, v, bias)]
        out = attention_with_bias(*low)
        ref = softmax_attention(q, k, v, attn_mask=bias)
        torch.testing.assert_close(out.double(), ref, rtol=0, atol=atol)
        grad = torch.randn_like(ref)
        ours = torch.autograd.grad(out, low, grad.to(dtype))
        theirs = torch.autograd.grad(ref, (q, k, v, bias), grad)
        for a, b in zip(ours, theirs, strict=True):
            assert a.dtype == dtype
            torch.testing.assert_close(a.double(), b, rtol=0, atol=atol * 4)
