"""NT-Xent and SupCon against lightly and against loop re-implementations of the papers' formulas."""

from __future__ import annotations

import math

import pytest
import torch
from lightly.loss import NTXentLoss as LightlyNTXent

from tests.helpers.ssl_inputs import views64
from vitzoo.ssl.losses import NTXentLoss, SupConLoss


def unit(v: torch.Tensor) -> torch.Tensor:
    return v / math.sqrt(float((v * v).sum()))


def ntxent_loop(z: torch.Tensor, tau: float) -> float:
    """Mean over ordered positive pairs (i, p) of -log e^{s_ip} / (e^{s_ip} + sum over other samples' views)."""
    batch, num_views, _ = z.shape
    u = [[unit(z[b, v]) for v in range(num_views)] for b in range(batch)]
    terms = []
    for b in range(batch):
        for v in range(num_views):
            negatives = sum(
                math.exp(float(u[b][v] @ u[c][w]) / tau) for c in range(batch) if c != b for w in range(num_views)
            )
            for w in range(num_views):
                if w != v:
                    pos = math.exp(float(u[b][v] @ u[b][w]) / tau)
                    terms.append(-math.log(pos / (pos + negatives)))
    return sum(terms) / len(terms)


def supcon_loop(z: torch.Tensor, labels: list[int], tau: float) -> float:
    """Khosla et al. eq. (2): mean over anchors of -1/|P(i)| sum_p log e^{s_ip} / sum_{a != i} e^{s_ia}."""
    batch, num_views, _ = z.shape
    items = [(unit(z[b, v]), labels[b]) for b in range(batch) for v in range(num_views)]
    per_anchor = []
    for i, (zi, yi) in enumerate(items):
        denom = sum(math.exp(float(zi @ za) / tau) for a, (za, _) in enumerate(items) if a != i)
        logs = [
            math.log(math.exp(float(zi @ zp) / tau) / denom) for p, (zp, yp) in enumerate(items) if p != i and yp == yi
        ]
        if logs:
            per_anchor.append(-sum(logs) / len(logs))
    return sum(per_anchor) / len(per_anchor)


@pytest.mark.parametrize("tau", [0.07, 0.1, 0.5])
def test_ntxent_two_views_equals_lightly(tau):
    z = views64(16, 2, 32)
    ours = NTXentLoss(tau)(z)
    ref = LightlyNTXent(temperature=tau)(z[:, 0], z[:, 1])
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("num_views", [2, 3, 4])
def test_ntxent_multi_view_equals_loop(num_views):
    z = views64(5, num_views, 8, seed=num_views)
    assert NTXentLoss(0.2)(z).item() == pytest.approx(ntxent_loop(z, 0.2), rel=1e-12)


def test_ntxent_and_supcon_forms_agree_for_two_views_only():
    z2, z3 = views64(6, 2, 8), views64(6, 3, 8)
    assert NTXentLoss(0.1)(z2).item() == pytest.approx(SupConLoss(0.1)(z2).item(), rel=1e-12)
    # three views: SupCon keeps the other positives in the denominator, NT-Xent does not
    assert NTXentLoss(0.1)(z3).item() < SupConLoss(0.1)(z3).item() - 0.05


@pytest.mark.parametrize("num_views", [1, 2, 3])
def test_supcon_equals_loop(num_views):
    z = views64(8, num_views, 8, seed=10 + num_views)
    labels = [0, 1, 0, 2, 1, 0, 3, 2]  # label 3 has one sample: no positive when V = 1
    ours = SupConLoss(0.1)(z, torch.tensor(labels))
    assert ours.item() == pytest.approx(supcon_loop(z, labels, 0.1), rel=1e-12)


def test_supcon_depends_on_labels():
    z = views64(8, 2, 8)
    a = SupConLoss(0.1)(z, torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]))
    b = SupConLoss(0.1)(z, torch.tensor([0, 1, 2, 3, 4, 5, 6, 7]))
    assert abs(a.item() - b.item()) > 0.1


def test_gradcheck_contrastive_losses():
    z = views64(3, 3, 4, requires_grad=True)
    labels = torch.tensor([0, 1, 0])
    assert torch.autograd.gradcheck(lambda x: NTXentLoss(0.3)(x), (z,))
    assert torch.autograd.gradcheck(lambda x: SupConLoss(0.3)(x, labels), (z,))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="at least 2"):
        NTXentLoss()(views64(4, 1, 8))
    with pytest.raises(ValueError, match="at least 2 samples"):
        NTXentLoss()(views64(1, 2, 8))
    with pytest.raises(ValueError, match="no positive"):
        SupConLoss()(views64(3, 1, 8), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(0.0)
