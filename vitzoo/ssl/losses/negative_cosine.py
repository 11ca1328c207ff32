"""Negative cosine similarity with a stop-gradient on the target (BYOL, SimSiam).

Grill et al., 2020, "Bootstrap Your Own Latent", https://arxiv.org/abs/2006.07733; Chen and He, 2021,
"Exploring Simple Siamese Representation Learning" (SimSiam), https://arxiv.org/abs/2011.10566, eq. (1):

    D(p, z) = - mean_b ( p_b / ||p_b|| ) . ( stopgrad(z_b) / ||z_b|| )

``p`` is the online network's prediction, ``z`` the target (the other view's projection in SimSiam, the
momentum network's in BYOL); no gradient flows into ``z``. The symmetric form over ``V`` views averages
``D(p_i, z_j)`` over all ordered pairs of different views ``i != j``; for ``V = 2`` it is SimSiam's
``1/2 D(p_1, z_2) + 1/2 D(p_2, z_1)``. (BYOL writes its loss as ``||p - z||^2 = 2 - 2 cos`` summed over both
directions, which is ``4 + 4 x`` this symmetric loss: same minimiser, gradients 4 times larger.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vitzoo.ssl.losses.batch import check_views
from vitzoo.ssl.losses.precision import full_precision


class NegativeCosineSimilarity(nn.Module):
    """``D(p, z)`` with stop-gradient on ``z`` (see the module docstring).

    Args:
        eps: floor of the norms, as in ``torch.nn.functional.cosine_similarity``.
    """

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    @full_precision
    def forward(self, p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``p``, ``z`` ``(B, D)`` -> ``-mean cos(p, stopgrad(z))``."""
        if p.shape != z.shape:
            raise ValueError(f"prediction and target shapes differ: {tuple(p.shape)} vs {tuple(z.shape)}")
        return -F.cosine_similarity(p, z.detach(), dim=-1, eps=self.eps).mean()

    def symmetric(self, p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``p``, ``z`` ``(B, V, D)`` -> mean of ``D(p_i, z_j)`` over ordered view pairs ``i != j``."""
        check_views(p, min_views=2, name="p")
        check_views(z, min_views=2, name="z")
        num_views = p.shape[1]
        terms = [self(p[:, i], z[:, j]) for i in range(num_views) for j in range(num_views) if i != j]
        return torch.stack(terms).mean()
