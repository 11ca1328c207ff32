"""Pairwise contrastive loss with a margin.

Chopra, Hadsell and LeCun, 2005; Hadsell, Chopra and LeCun, 2006, "Dimensionality Reduction by Learning an
Invariant Mapping" (http://yann.lecun.com/exdb/publis/pdf/hadsell-chopra-lecun-06.pdf), eq. (4). With the
Euclidean distance ``d_ij = ||z_i - z_j||`` and ``y_ij = 1`` for a pair with the same label:

    l_ij = y_ij * 1/2 d_ij^2 + (1 - y_ij) * 1/2 max(0, m - d_ij)^2

Similar pairs are pulled together; dissimilar pairs are pushed apart until they are ``m`` away. The loss is
the mean of ``l_ij`` over all unordered pairs ``i < j`` of the batch (every view of a multi-view batch is one
point carrying its sample's label).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vitzoo.schema import check_range
from vitzoo.ssl.losses.batch import flatten_views, pairwise_distances
from vitzoo.ssl.losses.precision import full_precision


class ContrastiveLoss(nn.Module):
    """Hadsell et al.'s margin loss over all pairs of a batch (see the module docstring).

    Args:
        margin: ``m``, the distance beyond which dissimilar pairs cost nothing.
        normalize: L2-normalise the embeddings first (then distances lie in [0, 2]: keep ``margin < 2``).
    """

    def __init__(self, margin: float = 1.0, *, normalize: bool = False) -> None:
        super().__init__()
        check_range("margin", margin, low=0, low_open=True, error=ValueError)
        self.margin = margin
        self.normalize = normalize

    @full_precision
    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``z`` ``(N, D)`` with labels ``(N,)``, or ``(B, V, D)`` with labels ``(B,)`` -> scalar loss."""
        z, labels = flatten_views(z, labels)  # (N, D), (N,)
        if z.shape[0] < 2:
            raise ValueError("the contrastive loss needs at least 2 embeddings")
        if self.normalize:
            z = F.normalize(z, dim=-1)
        dist = pairwise_distances(z)  # (N, N)
        same = labels[:, None] == labels[None, :]  # (N, N)
        pair_loss = torch.where(same, dist.square(), F.relu(self.margin - dist).square()) / 2  # (N, N)
        upper = torch.ones_like(same).triu(diagonal=1)  # (N, N): pairs i < j
        return pair_loss[upper].mean()
