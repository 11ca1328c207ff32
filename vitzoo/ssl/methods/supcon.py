"""Supervised contrastive learning (Khosla et al., 2020, https://arxiv.org/abs/2004.11362).

SimCLR's architecture (backbone + 2-layer projection head, 128-d) trained with the SupCon ``L_out`` loss
(:class:`~vitzoo.ssl.losses.SupConLoss`): every view of every sample with the same label is a positive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from vitzoo.ssl.heads import simclr_projection
from vitzoo.ssl.losses import SupConLoss
from vitzoo.ssl.methods.base import SSLMethod
from vitzoo.ssl.methods.config import ContrastiveConfig
from vitzoo.train.task import StepOutput


@dataclass
class SupConConfig(ContrastiveConfig):
    """SupCon options: those of :class:`~vitzoo.ssl.methods.config.ContrastiveConfig` (``temperature``, the
    paper's 0.1; ``proj_hidden_dim``, ``proj_out_dim`` 128; ``gather_distributed``)."""


class SupCon(SSLMethod):
    """SupCon over any backbone; ``training_step((views, labels))`` needs integer labels ``(B,)``."""

    config_class = SupConConfig
    min_batch = 2
    batch_reason = "the SupCon loss (its negatives are the other samples)"
    min_views = 1  # the other samples of a class are positives too

    def __init__(self, model: nn.Module, cfg: SupConConfig | None = None) -> None:
        super().__init__(model, cfg)
        cfg = self.cfg
        self.projector = simclr_projection(
            in_dim=self.num_features, hidden_dim=cfg.proj_hidden_dim, out_dim=cfg.proj_out_dim
        )
        self.criterion = SupConLoss(cfg.temperature, gather_distributed=cfg.gather_distributed)

    def training_step(self, batch: Any) -> StepOutput:
        views, labels = self.split(batch)  # (B, V, C, [T,] H, W), (B,)
        if labels is None:
            raise ValueError("SupCon needs labels: batches (views, labels)")
        h = self.embed(views)  # (B, V, D)
        z = self.project(self.projector, h)  # (B, V, P)
        loss = self.criterion(z, labels)
        return StepOutput(loss, self.collapse_metrics(h, z), batch_size=views.shape[0])
