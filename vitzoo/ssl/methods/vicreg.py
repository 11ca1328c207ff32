"""VICReg (Bardes et al., 2022, https://arxiv.org/abs/2105.04906): variance, invariance, covariance.

Backbone -> 3-layer expander (8192 wide) -> :class:`~vitzoo.ssl.losses.VICRegLoss` between two views. With
``V > 2`` views the loss (and each logged term) is the mean over all unordered pairs of views.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

import torch
from torch import nn

from vitzoo.schema import check_range
from vitzoo.ssl.heads import vicreg_expander
from vitzoo.ssl.losses import VICRegLoss
from vitzoo.ssl.methods.base import SSLMethod
from vitzoo.ssl.methods.config import MethodConfig, check_positive
from vitzoo.train.task import StepOutput


@dataclass
class VICRegConfig(MethodConfig):
    """VICReg options.

    Attributes:
        expander_dim: width of the three expander layers (8192).
        lambda_param, mu_param, nu_param: invariance, variance and covariance coefficients (25, 25, 1).
        eps: added to the variance under the square root (1e-4).
        gather_distributed: variance and covariance over the embeddings of every process.
    """

    expander_dim: int = 8192
    lambda_param: float = 25.0
    mu_param: float = 25.0
    nu_param: float = 1.0
    eps: float = 1e-4
    gather_distributed: bool = True

    def validate(self) -> None:
        """Raise :class:`~vitzoo.schema.ConfigError` for values out of range."""
        super().validate()
        check_positive(expander_dim=self.expander_dim, eps=self.eps)
        coefficients = {"lambda_param": self.lambda_param, "mu_param": self.mu_param, "nu_param": self.nu_param}
        for name, value in coefficients.items():
            check_range(name, value, low=0)


class VICReg(SSLMethod):
    """VICReg over any backbone; ``training_step((views, labels))``, labels unused."""

    config_class = VICRegConfig
    min_local_batch = 2
    batch_reason = "VICReg's variance and covariance terms (taken over the batch)"

    def __init__(self, model: nn.Module, cfg: VICRegConfig | None = None) -> None:
        super().__init__(model, cfg)
        cfg = self.cfg
        self.expander = vicreg_expander(in_dim=self.num_features, hidden_dim=cfg.expander_dim, out_dim=cfg.expander_dim)
        self.criterion = VICRegLoss(
            cfg.lambda_param, cfg.mu_param, cfg.nu_param, eps=cfg.eps, gather_distributed=cfg.gather_distributed
        )

    def training_step(self, batch: Any) -> StepOutput:
        views, _ = self.split(batch)  # (B, V, C, [T,] H, W)
        h = self.embed(views)  # (B, V, D)
        z = self.project(self.expander, h)  # (B, V, E)
        pairs = list(combinations(range(z.shape[1]), 2))
        terms = [self.criterion.terms(z[:, i], z[:, j]) for i, j in pairs]
        mean = {k: torch.stack([t[k] for t in terms]).mean() for k in terms[0]}
        c = self.cfg
        loss = c.lambda_param * mean["invariance"] + c.mu_param * mean["variance"] + c.nu_param * mean["covariance"]
        metrics = self.collapse_metrics(h, z)
        metrics.update({k: v.detach() for k, v in mean.items()})
        return StepOutput(loss, metrics, batch_size=views.shape[0])
