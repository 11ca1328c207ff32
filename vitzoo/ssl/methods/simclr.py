"""SimCLR (Chen et al., 2020, https://arxiv.org/abs/2002.05709), and CVRL for video with rho views.

Every view goes through the backbone and a projection head; NT-Xent
(:class:`~vitzoo.ssl.losses.NTXentLoss`) pulls the ``V`` views of a sample together and pushes the views of
other samples (of every process, with ``gather_distributed``) away. CVRL (Qian et al., 2021) is SimCLR on
clips: feed views from :class:`~vitzoo.ssl.temporal.CVRLSampler` and :func:`~vitzoo.ssl.views.cvrl_augment`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from vitzoo.schema import check_choice
from vitzoo.ssl.heads import simclr_projection, simclr_v2_projection
from vitzoo.ssl.losses import NTXentLoss
from vitzoo.ssl.methods.base import SSLMethod
from vitzoo.ssl.methods.config import ContrastiveConfig
from vitzoo.train.task import StepOutput

HEADS = ("v1", "v2")


@dataclass
class SimCLRConfig(ContrastiveConfig):
    """SimCLR options: those of :class:`~vitzoo.ssl.methods.config.ContrastiveConfig` (NT-Xent ``temperature``
    0.1, ``proj_hidden_dim``, ``proj_out_dim`` 128, ``gather_distributed``: negatives from every process) and

    Attributes:
        head: ``"v1"`` (2-layer MLP) or ``"v2"`` (3 layers with BatchNorm).
    """

    head: Literal["v1", "v2"] = "v1"

    def validate(self) -> None:
        """Raise :class:`~vitzoo.schema.ConfigError` for values out of range."""
        super().validate()
        check_choice("head", self.head, HEADS)


class SimCLR(SSLMethod):
    """SimCLR over any backbone (``model(x) -> (B, D)``); ``training_step((views, labels))``, labels unused."""

    config_class = SimCLRConfig
    min_batch = 2
    batch_reason = "NT-Xent (its negatives are the other samples)"

    def __init__(self, model: nn.Module, cfg: SimCLRConfig | None = None) -> None:
        super().__init__(model, cfg)
        cfg = self.cfg
        build = simclr_projection if cfg.head == "v1" else simclr_v2_projection
        self.projector = build(in_dim=self.num_features, hidden_dim=cfg.proj_hidden_dim, out_dim=cfg.proj_out_dim)
        self.criterion = NTXentLoss(cfg.temperature, gather_distributed=cfg.gather_distributed)

    def training_step(self, batch: Any) -> StepOutput:
        views, _ = self.split(batch)  # (B, V, C, [T,] H, W)
        h = self.embed(views)  # (B, V, D)
        z = self.project(self.projector, h)  # (B, V, P)
        loss = self.criterion(z)
        return StepOutput(loss, self.collapse_metrics(h, z), batch_size=views.shape[0])
