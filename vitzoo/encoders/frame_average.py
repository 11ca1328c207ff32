"""Frame averaging: a ViT on each time step, features averaged over time. A baseline with no temporal modelling.

It is the factorised encoder without its temporal transformer: the features do not depend on the order
of the frames, so it cannot tell a clip from the same clip reversed. The demo uses it to show that its
task needs time.
"""

from __future__ import annotations

import torch

from vitzoo.encoders.base import ViTInit
from vitzoo.encoders.per_frame import PerFrameEncoder
from vitzoo.registry import ENCODERS


@ENCODERS.register("frame_avg")
class FrameAverageEncoder(PerFrameEncoder):
    """``spatial`` (a ViT trunk) per time step, then the mean of the ``T`` frame summaries."""

    vit_init = ViTInit(trunk="spatial")

    def forward(self, x: torch.Tensor, *, return_tokens: bool = False):
        self.check_tokens(x)
        frames = self.forward_spatial(x)  # (B, T, D)
        pooled = frames.mean(dim=1)  # (B, D)
        return (pooled, frames) if return_tokens else pooled
