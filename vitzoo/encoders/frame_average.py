"""Frame averaging: a ViT on each time step, features averaged over time. A baseline with no temporal modelling.

It is the factorised encoder without its temporal transformer: the features do not depend on the order
of the frames, so it cannot tell a clip from the same clip reversed. The demo uses it to show that its
task needs time. Its final tokens are the ``T`` frame summaries ``(B, T, D)``, which the model averages.
"""

from __future__ import annotations

import torch

from vitzoo.config import VideoConfig
from vitzoo.encoders.base import ViTInit
from vitzoo.encoders.per_frame import PerFrameEncoder
from vitzoo.registry import ENCODERS


@ENCODERS.register("frame_avg")
class FrameAverageEncoder(PerFrameEncoder):
    """``spatial`` (a ViT trunk) per time step; the model pools the ``T`` frame summaries by their mean."""

    vit_init = ViTInit(trunk="spatial")

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__(cfg)
        self.num_prefix_tokens = 0
        self.global_pool = "avg"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_spatial(x)  # (B, T, D)

    @property
    def num_taps(self) -> int:
        return len(self.spatial.blocks)

    def forward_taps(self, x: torch.Tensor, take: set[int], *, norm: bool, stop_at: int | None):
        return self.spatial_taps(x, take, norm=norm, stop_at=stop_at)
