"""What NT-Xent and SupCon share: a temperature, optional negatives from every process, anchors and keys.

Both L2-normalise the embeddings ``(B, V, D)`` into ``N = B V`` anchors (this process's views) and contrast
them with ``M`` keys: the anchors themselves, or with ``gather_distributed`` the anchors of every process
(:func:`vitzoo.ssl.gather.all_gather`, rank order), among which this process's rows start at ``rank * N``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vitzoo.schema import check_range
from vitzoo.ssl.gather import all_gather
from vitzoo.train.distributed import rank


class TemperatureContrastiveLoss(nn.Module):
    """Base of the temperature-scaled contrastive losses (:class:`~vitzoo.ssl.losses.NTXentLoss`,
    :class:`~vitzoo.ssl.losses.SupConLoss`).

    Args:
        temperature: ``tau`` of ``s_ik = z_i . z_k / tau`` (SimCLR, CVRL and SupCon use 0.1).
        gather_distributed: take the keys (positives and negatives) from every process (identity when not
            distributed).
    """

    def __init__(self, temperature: float = 0.1, *, gather_distributed: bool = False) -> None:
        super().__init__()
        check_range("temperature", temperature, low=0, low_open=True, error=ValueError)
        self.temperature = temperature
        self.gather_distributed = gather_distributed

    def anchors_and_keys(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``z`` ``(B, V, D)`` -> anchors ``(N, D)``, keys ``(M, D)`` (both unit length) and each anchor's row in
        the keys ``(N,)``; ``N = B V``, ``M = W N`` with ``W`` processes gathered (else ``M = N``)."""
        anchors = F.normalize(rearrange(z, "b v d -> (b v) d"), dim=-1)  # (N, D)
        keys = all_gather(anchors) if self.gather_distributed else anchors  # (M, D)
        start = rank() * anchors.shape[0] if self.gather_distributed else 0
        own = torch.arange(start, start + anchors.shape[0], device=z.device)  # (N,)
        return anchors, keys, own
