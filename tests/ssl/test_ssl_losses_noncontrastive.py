"""Negative cosine similarity and VICReg against lightly; the stop-gradient."""

from __future__ import annotations

import pytest
import torch
from lightly.loss import NegativeCosineSimilarity as LightlyNegCos
from lightly.loss import VICRegLoss as LightlyVICReg

from tests.helpers.ssl_inputs import views64
from vitzoo.ssl.losses import NegativeCosineSimilarity, VICRegLoss


def test_negative_cosine_equals_lightly():
    p, z = views64(16, 2, 32).unbind(1)
    torch.testing.assert_close(NegativeCosineSimilarity()(p, z), LightlyNegCos()(p, z), rtol=1e-12, atol=1e-12)


def test_negative_cosine_stops_the_gradient_of_the_target():
    p = views64(4, 1, 8)[:, 0].requires_grad_()
    z = views64(4, 1, 8, seed=1)[:, 0].requires_grad_()
    NegativeCosineSimilarity()(p, z).backward()
    assert z.grad is None and p.grad is not None and p.grad.abs().sum() > 0


def test_symmetric_form():
    p, z = views64(8, 2, 16), views64(8, 2, 16, seed=1)
    ref = LightlyNegCos()
    expected = 0.5 * (ref(p[:, 0], z[:, 1]) + ref(p[:, 1], z[:, 0]))
    torch.testing.assert_close(NegativeCosineSimilarity().symmetric(p, z), expected, rtol=1e-12, atol=1e-12)
    p3, z3 = views64(8, 3, 16), views64(8, 3, 16, seed=1)
    pairs = [ref(p3[:, i], z3[:, j]) for i in range(3) for j in range(3) if i != j]
    torch.testing.assert_close(NegativeCosineSimilarity().symmetric(p3, z3), sum(pairs) / 6, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("batch", "dim"), [(2, 3), (16, 32), (64, 8)])
def test_vicreg_equals_lightly(batch, dim):
    a, b = views64(batch, 2, dim, seed=batch).unbind(1)
    b = 0.3 * b + a  # correlated views, as two augmentations would be
    torch.testing.assert_close(VICRegLoss()(a, b), LightlyVICReg()(a, b), rtol=1e-12, atol=1e-12)
    coeffs = dict(lambda_param=5.0, mu_param=2.0, nu_param=0.5)
    torch.testing.assert_close(VICRegLoss(**coeffs)(a, b), LightlyVICReg(**coeffs)(a, b), rtol=1e-12, atol=1e-12)


def test_vicreg_terms_react_to_collapse():
    a = views64(32, 1, 16)[:, 0]
    healthy = VICRegLoss().terms(a, a)
    collapsed = VICRegLoss().terms(a * 1e-3, a * 1e-3)  # no variance left
    assert healthy["invariance"] == 0 and collapsed["invariance"] == 0
    assert collapsed["variance"] > 0.9 > healthy["variance"]


def test_gradcheck_noncontrastive_losses():
    p = views64(4, 1, 5)[:, 0].requires_grad_()
    z = views64(4, 1, 5, seed=1)[:, 0]
    assert torch.autograd.gradcheck(lambda x: NegativeCosineSimilarity()(x, z), (p,))
    a = views64(6, 1, 4, seed=2)[:, 0].requires_grad_()
    b = views64(6, 1, 4, seed=3)[:, 0].requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: VICRegLoss()(x, y), (a, b))
