"""Collapse indicator for self-supervised training.

SimSiam (Chen and He, 2021, section 4.1, figure 2): the standard deviation over the batch of the
L2-normalised embeddings ``z / ||z||``, computed per dimension and averaged over dimensions. When the
embeddings collapse to one vector it is 0; for ``z`` drawn from an isotropic zero-mean Gaussian it is close
to ``1 / sqrt(d)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def embedding_std(z: torch.Tensor) -> torch.Tensor:
    """``z`` ``(..., N, D)`` or ``(N, D)`` -> mean over dimensions of the std over samples of ``z / ||z||``."""
    z = F.normalize(z.detach().float().reshape(-1, z.shape[-1]), dim=-1)  # (N, D)
    return z.std(dim=0).mean()
