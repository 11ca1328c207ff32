"""BYOL (Grill et al., 2020, https://arxiv.org/abs/2006.07733): predict a momentum target, no negatives.

The online network (backbone -> projector -> predictor) predicts, for each view, the target network's
projection of every other view; the target (backbone -> projector) is an exponential moving average of the
online backbone and projector, updated in :meth:`BYOL.on_update` with the cosine momentum schedule
(0.996 -> 1) of :mod:`vitzoo.ssl.momentum` (parameters averaged, buffers copied). The loss is the symmetric
negative cosine similarity (:class:`~vitzoo.ssl.losses.NegativeCosineSimilarity`), which is the paper's
``2 - 2 cos`` summed over both directions up to ``4 + 4 x`` (use a 4x larger learning rate to match SGD
steps of the paper's scale). The target gets no gradient; it is saved with the training state.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vitzoo.schema import ConfigError
from vitzoo.ssl.heads import byol_prediction, byol_projection
from vitzoo.ssl.losses import NegativeCosineSimilarity
from vitzoo.ssl.methods.base import SSLMethod
from vitzoo.ssl.methods.config import PredictorConfig
from vitzoo.ssl.momentum import cosine_momentum, ema_update
from vitzoo.train.task import StepOutput


@dataclass
class BYOLConfig(PredictorConfig):
    """BYOL options.

    Attributes:
        proj_hidden_dim, proj_out_dim: projector widths (4096, 256).
        pred_hidden_dim: predictor hidden width (4096; its output is ``proj_out_dim``).
        base_momentum, final_momentum: the target's EMA momentum at the first and the last update.
    """

    proj_hidden_dim: int = 4096
    proj_out_dim: int = 256
    pred_hidden_dim: int = 4096
    base_momentum: float = 0.996
    final_momentum: float = 1.0

    def validate(self) -> None:
        """Raise :class:`~vitzoo.schema.ConfigError` for values out of range."""
        super().validate()
        if not 0.0 <= self.base_momentum <= self.final_momentum <= 1.0:
            raise ConfigError(
                f"need 0 <= base_momentum <= final_momentum <= 1, got {self.base_momentum}, {self.final_momentum}"
            )


class BYOL(SSLMethod):
    """BYOL over any backbone; ``training_step((views, labels))``, labels unused; call ``on_update`` per update."""

    config_class = BYOLConfig

    def __init__(self, model: nn.Module, cfg: BYOLConfig | None = None) -> None:
        super().__init__(model, cfg)
        cfg = self.cfg
        self.projector = byol_projection(
            in_dim=self.num_features, hidden_dim=cfg.proj_hidden_dim, out_dim=cfg.proj_out_dim
        )
        self.predictor = byol_prediction(
            in_dim=cfg.proj_out_dim, hidden_dim=cfg.pred_hidden_dim, out_dim=cfg.proj_out_dim
        )
        self.target_model = copy.deepcopy(model).requires_grad_(False)
        self.target_projector = copy.deepcopy(self.projector).requires_grad_(False)
        self.criterion = NegativeCosineSimilarity()
        self.momentum = cfg.base_momentum  # the value used by the latest update

    def training_step(self, batch: Any) -> StepOutput:
        views, _ = self.split(batch)  # (B, V, C, [T,] H, W)
        h = self.embed(views)  # (B, V, D)
        z = self.project(self.projector, h)  # (B, V, P)
        p = self.project(self.predictor, z)  # (B, V, P)
        with torch.no_grad():
            target = self.project(self.target_projector, self.embed(views, self.target_model))  # (B, V, P)
        loss = self.criterion.symmetric(p, target)
        metrics = self.collapse_metrics(h, z)
        metrics["momentum"] = torch.tensor(self.momentum, device=loss.device)
        return StepOutput(loss, metrics, batch_size=views.shape[0])

    @torch.no_grad()
    def on_update(self, step: int, total_steps: int) -> None:
        """Move the target towards the online network with this update's momentum."""
        cfg = self.cfg
        self.momentum = cosine_momentum(step, total_steps, base=cfg.base_momentum, final=cfg.final_momentum)
        ema_update(self.target_model, self.model, self.momentum)
        ema_update(self.target_projector, self.projector, self.momentum)

    def resume_at(self, step: int, total_steps: int) -> None:
        """The momentum of update ``step``, which the next step logs (as the uninterrupted run does)."""
        cfg = self.cfg
        if step >= 1:
            step = min(step, total_steps)  # a run resumed with fewer epochs than it has already done
            self.momentum = cosine_momentum(step, total_steps, base=cfg.base_momentum, final=cfg.final_momentum)
