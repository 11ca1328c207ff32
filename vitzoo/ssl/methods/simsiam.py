"""SimSiam (Chen and He, 2021, https://arxiv.org/abs/2011.10566): a siamese network with a stop-gradient.

Backbone -> 3-layer projector -> bottleneck predictor; each view's prediction is pulled towards the
(stop-gradient) projection of every other view with the symmetric negative cosine similarity. No momentum
target and no negatives: the stop-gradient and the predictor prevent collapse (watch ``embedding_std``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from vitzoo.ssl.heads import simsiam_prediction, simsiam_projection
from vitzoo.ssl.losses import NegativeCosineSimilarity
from vitzoo.ssl.methods.base import SSLMethod
from vitzoo.ssl.methods.config import PredictorConfig
from vitzoo.train.task import StepOutput


@dataclass
class SimSiamConfig(PredictorConfig):
    """SimSiam options.

    Attributes:
        proj_hidden_dim, proj_out_dim: projector widths (2048, 2048).
        pred_hidden_dim: predictor bottleneck width (512).
    """

    proj_hidden_dim: int = 2048
    proj_out_dim: int = 2048
    pred_hidden_dim: int = 512


class SimSiam(SSLMethod):
    """SimSiam over any backbone; ``training_step((views, labels))``, labels unused."""

    config_class = SimSiamConfig

    def __init__(self, model: nn.Module, cfg: SimSiamConfig | None = None) -> None:
        super().__init__(model, cfg)
        cfg = self.cfg
        self.projector = simsiam_projection(
            in_dim=self.num_features, hidden_dim=cfg.proj_hidden_dim, out_dim=cfg.proj_out_dim
        )
        self.predictor = simsiam_prediction(
            in_dim=cfg.proj_out_dim, hidden_dim=cfg.pred_hidden_dim, out_dim=cfg.proj_out_dim
        )
        self.criterion = NegativeCosineSimilarity()

    def training_step(self, batch: Any) -> StepOutput:
        views, _ = self.split(batch)  # (B, V, C, [T,] H, W)
        h = self.embed(views)  # (B, V, D)
        z = self.project(self.projector, h)  # (B, V, P)
        p = self.project(self.predictor, z)  # (B, V, P)
        loss = self.criterion.symmetric(p, z)  # stop-gradient on z inside
        return StepOutput(loss, self.collapse_metrics(h, z), batch_size=views.shape[0])
