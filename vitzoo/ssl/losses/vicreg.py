"""VICReg: variance-invariance-covariance regularisation.

Bardes, Ponce and LeCun, 2022, https://arxiv.org/abs/2105.04906, as in the authors' code
(https://github.com/facebookresearch/vicreg, ``main_vicreg.py``). For two batches of embeddings
``Z, Z'`` ``(B, D)``:

* invariance ``s = mean_{b, d} (z_bd - z'_bd)^2`` (mean squared error);
* variance ``v(Z) = mean_d max(0, 1 - sqrt(Var_b(z_d) + eps))`` (unbiased variance, ``eps = 1e-4``);
* covariance ``c(Z) = 1/D sum_{d != e} C(Z)_de^2`` with ``C(Z) = (Z - mean Z)^T (Z - mean Z) / (B - 1)``;

    loss = lambda s + mu (v(Z) + v(Z')) / 2 + nu (c(Z) + c(Z'))

with ``lambda = mu = 25``, ``nu = 1`` (the code halves the variance sum; the paper's eq. (6) does not show it).
With ``gather_distributed=True`` the variance and covariance use the embeddings of every process (the
invariance term is per sample and stays local), as the authors' ``FullGatherLayer`` does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vitzoo.ssl.gather import all_gather
from vitzoo.ssl.losses.precision import full_precision


def variance_term(z: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """``v(Z)``: mean hinge of the per-dimension standard deviation at 1, ``z`` ``(B, D)``."""
    std = torch.sqrt(z.var(dim=0) + eps)  # (D,)
    return F.relu(1.0 - std).mean()


def covariance_term(z: torch.Tensor) -> torch.Tensor:
    """``c(Z)``: sum of squared off-diagonal covariances over ``D``, ``z`` ``(B, D)``."""
    batch, dim = z.shape
    z = z - z.mean(dim=0)
    cov = z.T @ z / (batch - 1)  # (D, D)
    return (cov.square().sum() - cov.diagonal().square().sum()) / dim


class VICRegLoss(nn.Module):
    """VICReg over two views ``(B, D)`` (see the module docstring).

    Args:
        lambda_param: invariance coefficient (25).
        mu_param: variance coefficient (25).
        nu_param: covariance coefficient (1).
        eps: added to the variance under the square root (1e-4).
        gather_distributed: variance and covariance over the embeddings of every process.
    """

    def __init__(
        self,
        lambda_param: float = 25.0,
        mu_param: float = 25.0,
        nu_param: float = 1.0,
        *,
        eps: float = 1e-4,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        self.lambda_param, self.mu_param, self.nu_param, self.eps = lambda_param, mu_param, nu_param, eps
        self.gather_distributed = gather_distributed

    @full_precision
    def terms(self, z_a: torch.Tensor, z_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """The unweighted ``invariance``, ``variance`` (mean of both views) and ``covariance`` (sum) terms."""
        if z_a.shape != z_b.shape or z_a.ndim != 2 or z_a.shape[0] < 2:
            raise ValueError(f"VICReg needs two (B, D) batches with B >= 2, got {tuple(z_a.shape)}, {tuple(z_b.shape)}")
        invariance = F.mse_loss(z_a, z_b)
        if self.gather_distributed:
            z_a, z_b = all_gather(z_a), all_gather(z_b)  # (W B, D)
        variance = (variance_term(z_a, self.eps) + variance_term(z_b, self.eps)) / 2
        covariance = covariance_term(z_a) + covariance_term(z_b)
        return {"invariance": invariance, "variance": variance, "covariance": covariance}

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """``z_a``, ``z_b`` ``(B, D)`` -> scalar loss."""
        t = self.terms(z_a, z_b)
        return self.lambda_param * t["invariance"] + self.mu_param * t["variance"] + self.nu_param * t["covariance"]
