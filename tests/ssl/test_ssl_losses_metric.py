"""Contrastive (margin) and triplet losses: loop references, the mined triplets of a hand-made batch."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from vitzoo.ssl.losses import ContrastiveLoss, TripletLoss, batch_all_triplets

# Six points on a line, distances easy to read: labels A = 0, B = 1.
X = torch.tensor([0.0, 1.0, 3.0, 0.5, 5.0, 2.25], dtype=torch.float64)[:, None]
Y = torch.tensor([0, 0, 0, 1, 1, 1])


def dist(a, b, squared):
    d = math.sqrt(sum((float(x) - float(y)) ** 2 for x, y in zip(a, b, strict=True)))
    return d * d if squared else d


def triplet_loop(z, labels, margin, mining, squared):
    """Plain-Python mining and averaging, following the rules of the TripletLoss docstring."""
    n, y = len(z), labels.tolist()
    d = [[dist(z[i], z[j], squared) for j in range(n)] for i in range(n)]
    pos = {a: [p for p in range(n) if p != a and y[p] == y[a]] for a in range(n)}
    neg = {a: [k for k in range(n) if y[k] != y[a]] for a in range(n)}
    hinge = lambda a, p, k: max(0.0, d[a][p] - d[a][k] + margin)
    if mining == "batch_all":
        losses = [hinge(a, p, k) for a in range(n) for p in pos[a] for k in neg[a]]
        positive = [v for v in losses if v > 0]
        return sum(positive) / len(positive) if positive else 0.0
    if mining == "batch_hard":
        losses = []
        for a in range(n):
            if pos[a] and neg[a]:
                p = max(pos[a], key=lambda j: (d[a][j], -j))
                k = min(neg[a], key=lambda j: (d[a][j], j))
                losses.append(hinge(a, p, k))
        return sum(losses) / len(losses)
    losses = []
    for a in range(n):
        for p in pos[a]:
            if not neg[a]:
                continue
            farther = [k for k in neg[a] if d[a][k] > d[a][p]]
            k = min(farther, key=lambda j: (d[a][j], j)) if farther else max(neg[a], key=lambda j: (d[a][j], -j))
            losses.append(hinge(a, p, k))
    return sum(losses) / len(losses)


def test_batch_all_mines_every_valid_triplet():
    expected = [
        (a, p, n) for a, p, n in itertools.product(range(6), repeat=3) if a != p and Y[a] == Y[p] and Y[n] != Y[a]
    ]
    assert batch_all_triplets(Y).tolist() == [list(t) for t in expected]
    assert len(expected) == 36  # 6 anchors x 2 positives x 3 negatives


def test_batch_hard_picks_farthest_positive_and_nearest_negative():
    d = torch.cdist(X, X)
    mined = TripletLoss(mining="batch_hard", normalize=False, squared=False).mine(d, Y)
    # anchor 3 (at 0.5): negatives 0 and 1 are both 0.5 away -> the lower index, 0
    assert mined.tolist() == [[0, 2, 3], [1, 2, 3], [2, 0, 5], [3, 4, 0], [4, 3, 2], [5, 4, 2]]


def test_semi_hard_picks_nearest_negative_beyond_the_positive():
    d = torch.cdist(X, X)
    mined = TripletLoss(mining="semi_hard", normalize=False, squared=False).mine(d, Y)
    assert mined.tolist() == [
        [0, 1, 5],  # d_ap = 1: negatives beyond it at 5 and 2.25 -> 5 (2.25)
        [0, 2, 4],
        [1, 0, 5],
        [1, 2, 4],  # d_ap = 2: 5 is at 1.25 (closer), 4 at 4 -> 4
        [2, 0, 3],  # d_ap = 3: every negative is closer -> the farthest, 3 (2.5)
        [2, 1, 3],  # d_ap = 2: 4 is at exactly 2 (not beyond), 3 at 2.5 -> 3
        [3, 4, 2],
        [3, 5, 2],
        [4, 3, 0],
        [4, 5, 1],
        [5, 3, 0],
        [5, 4, 0],
    ]


@pytest.mark.parametrize("mining", ["batch_all", "batch_hard", "semi_hard"])
@pytest.mark.parametrize("squared", [False, True])
def test_triplet_equals_loop(mining, squared):
    g = torch.Generator().manual_seed(1)
    z = torch.randn(12, 5, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 3, (12,), generator=g)
    loss = TripletLoss(0.5, mining=mining, squared=squared, normalize=False)(z, labels)
    assert loss.item() == pytest.approx(triplet_loop(z, labels, 0.5, mining, squared), rel=1e-10)
    assert loss.item() > 0


def test_triplet_on_views_normalises_and_repeats_labels():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(4, 2, 6, generator=g, dtype=torch.float64)  # (B, V, D)
    labels = torch.tensor([0, 1, 0, 1])
    flat = torch.nn.functional.normalize(z.reshape(8, 6), dim=-1)
    expected = triplet_loop(flat, labels.repeat_interleave(2), 0.2, "semi_hard", True)
    assert TripletLoss()(z, labels).item() == pytest.approx(expected, rel=1e-10)


def test_batch_all_is_zero_when_every_triplet_is_easy():
    z = torch.tensor([[0.0], [0.1], [10.0], [10.1]], dtype=torch.float64, requires_grad=True)
    loss = TripletLoss(1.0, mining="batch_all", normalize=False, squared=False)(z, torch.tensor([0, 0, 1, 1]))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(z.grad, torch.zeros_like(z))


def contrastive_loop(z, labels, margin):
    n, total, count = len(z), 0.0, 0
    for i in range(n):
        for j in range(i + 1, n):
            d = dist(z[i], z[j], squared=False)
            total += 0.5 * d * d if labels[i] == labels[j] else 0.5 * max(0.0, margin - d) ** 2
            count += 1
    return total / count


@pytest.mark.parametrize("margin", [0.5, 2.0])
def test_contrastive_equals_loop(margin):
    g = torch.Generator().manual_seed(3)
    z = torch.randn(10, 4, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 3, (10,), generator=g)
    loss = ContrastiveLoss(margin)(z, labels)
    assert loss.item() == pytest.approx(contrastive_loop(z, labels.tolist(), margin), rel=1e-12)


def test_contrastive_margin_matters():
    z = X.clone()
    assert ContrastiveLoss(0.1)(z, Y).item() < ContrastiveLoss(3.0)(z, Y).item()


def test_gradcheck_metric_losses():
    g = torch.Generator().manual_seed(4)
    z = torch.randn(8, 3, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])
    assert torch.autograd.gradcheck(lambda x: ContrastiveLoss(1.5)(x, labels), (z,))
    for mining in ("batch_all", "batch_hard", "semi_hard"):
        loss = TripletLoss(1.0, mining=mining, normalize=True, squared=False)
        assert torch.autograd.gradcheck(lambda x, loss=loss: loss(x, labels), (z,))


def test_no_valid_triplet_raises():
    with pytest.raises(ValueError, match="no valid triplet"):
        TripletLoss()(torch.randn(3, 4), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="mining"):
        TripletLoss(mining="hardest")
