"""Triplet loss with a margin and in-batch mining (batch-all, batch-hard, semi-hard).

Schroff, Kalenichenko and Philbin, 2015, "FaceNet", https://arxiv.org/abs/1503.03832 (loss, semi-hard);
Hermans, Beyer and Leibe, 2017, "In Defense of the Triplet Loss", https://arxiv.org/abs/1703.07737
(batch-hard, batch-all). For a triplet (anchor ``a``, positive ``p``, negative ``n``) with distance ``d``:

    l(a, p, n) = max(0, d(a, p) - d(a, n) + m)

A triplet is *valid* when ``a != p``, ``y_a == y_p`` and ``y_n != y_a``. Which valid triplets count, and the
mean taken, per ``mining``:

* ``"batch_all"``: every valid triplet; the loss is the mean of ``l`` over the triplets with ``l > 0``
  (Hermans et al.'s "BA≠0", as in common implementations: easy triplets do not dilute the mean); 0 if none.
* ``"batch_hard"``: one triplet per anchor that has a positive and a negative: its farthest positive and
  its nearest negative; the loss is the mean over those anchors.
* ``"semi_hard"``: one triplet per ordered positive pair ``(a, p)``: the nearest negative farther than the
  positive (``d(a, n) > d(a, p)``: semi-hard when it is also within the margin, else the pair costs 0); if
  every negative is closer than the positive, the farthest negative (TensorFlow Addons'
  ``triplet_semihard_loss`` rule). The loss is the mean over positive pairs.

Ties go to the lowest index. Mining looks at detached distances; the gradient flows through the distances
of the chosen triplets. Defaults follow FaceNet: unit-normalised embeddings, squared distances, ``m = 0.2``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vitzoo.schema import check_range
from vitzoo.ssl.losses.batch import flatten_views, pairwise_distances
from vitzoo.ssl.losses.precision import full_precision

MINING = ("batch_all", "batch_hard", "semi_hard")


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    same = labels[:, None] == labels[None, :]  # (N, N)
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)  # a != p
    return positive, ~same


def batch_all_triplets(labels: torch.Tensor) -> torch.Tensor:
    """Every valid triplet, ``(K, 3)`` rows ``(a, p, n)`` in lexicographic order."""
    positive, negative = _masks(labels)
    valid = positive[:, :, None] & negative[:, None, :]  # (N, N, N): [a, p, n]
    return valid.nonzero()


def batch_hard_triplets(dist: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per anchor with a positive and a negative: (a, farthest positive, nearest negative), ``(K, 3)``."""
    positive, negative = _masks(labels)
    anchors = (positive.any(dim=1) & negative.any(dim=1)).nonzero().squeeze(1)  # (K,)
    hardest_pos = dist.masked_fill(~positive, float("-inf")).argmax(dim=1)  # (N,)
    hardest_neg = dist.masked_fill(~negative, float("inf")).argmin(dim=1)  # (N,)
    return torch.stack([anchors, hardest_pos[anchors], hardest_neg[anchors]], dim=1)


def semi_hard_triplets(dist: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per positive pair (a, p) with a negative for ``a``: the negative chosen by the semi-hard rule, ``(K, 3)``."""
    positive, negative = _masks(labels)
    pairs = (positive & negative.any(dim=1, keepdim=True)).nonzero()  # (K, 2): (a, p)
    a, p = pairs[:, 0], pairs[:, 1]
    d_an = dist[a]  # (K, N)
    neg = negative[a]  # (K, N)
    outside = neg & (d_an > dist[a, p][:, None])  # (K, N): negatives farther than the positive
    nearest_outside = d_an.masked_fill(~outside, float("inf")).argmin(dim=1)  # (K,)
    farthest = d_an.masked_fill(~neg, float("-inf")).argmax(dim=1)  # (K,)
    n = torch.where(outside.any(dim=1), nearest_outside, farthest)
    return torch.stack([a, p, n], dim=1)


class TripletLoss(nn.Module):
    """Triplet margin loss with in-batch mining (see the module docstring for the exact rules).

    Args:
        margin: ``m``.
        mining: ``"batch_all"``, ``"batch_hard"`` or ``"semi_hard"``.
        squared: use squared Euclidean distances (FaceNet) instead of plain ones (Hermans et al.).
        normalize: L2-normalise the embeddings first (FaceNet).
    """

    def __init__(
        self,
        margin: float = 0.2,
        *,
        mining: Literal["batch_all", "batch_hard", "semi_hard"] = "semi_hard",
        squared: bool = True,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        if mining not in MINING:
            raise ValueError(f"mining={mining!r}; expected one of {MINING}")
        check_range("margin", margin, low=0, error=ValueError)
        self.margin, self.mining, self.squared, self.normalize = margin, mining, squared, normalize

    def mine(self, dist: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The triplets ``(K, 3)`` (rows ``(a, p, n)``) this loss averages over, from distances ``(N, N)``."""
        dist = dist.detach()
        if self.mining == "batch_all":
            return batch_all_triplets(labels)
        if self.mining == "batch_hard":
            return batch_hard_triplets(dist, labels)
        return semi_hard_triplets(dist, labels)

    @full_precision
    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``z`` ``(N, D)`` with labels ``(N,)``, or ``(B, V, D)`` with labels ``(B,)`` -> scalar loss."""
        z, labels = flatten_views(z, labels)  # (N, D), (N,)
        if self.normalize:
            z = F.normalize(z, dim=-1)
        dist = pairwise_distances(z, squared=self.squared)  # (N, N)
        a, p, n = self.mine(dist, labels).unbind(dim=1)  # (K,) each
        if a.numel() == 0:
            raise ValueError("no valid triplet in this batch: it needs two samples of one label and another label")
        losses = F.relu(dist[a, p] - dist[a, n] + self.margin)  # (K,)
        if self.mining == "batch_all":
            hard = losses > 0
            return losses[hard].mean() if bool(hard.any()) else losses.sum() * 0.0
        return losses.mean()
