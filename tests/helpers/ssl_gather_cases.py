"""The gathered losses and the fixed global batch shared by the 1-process, threaded and 2-process checks."""

from __future__ import annotations

import torch
from torch import nn

from vitzoo.ssl.losses import NTXentLoss, SupConLoss, VICRegLoss

BATCH, VIEWS, DIM, IN_DIM = 8, 2, 6, 5  # global batch (split across ranks)


def global_batch(world: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The same embeddings ``(B, V, D)``, labels ``(B,)`` and inputs ``(B, V, IN)`` on every rank (float64)."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(BATCH, VIEWS, DIM, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 3, (BATCH,), generator=g)
    x = torch.randn(BATCH, VIEWS, IN_DIM, generator=g, dtype=torch.float64)
    return z, labels, x


def linear_layer() -> nn.Module:
    """The same freshly initialised projection on every rank (a private generator: ranks may be threads)."""
    layer = nn.Linear(IN_DIM, DIM).double()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(DIM, IN_DIM, generator=g, dtype=torch.float64) / IN_DIM**0.5)
        layer.bias.copy_(torch.randn(DIM, generator=g, dtype=torch.float64))
    return layer


LOSSES = {
    "ntxent": lambda z, y, gather: NTXentLoss(0.1, gather_distributed=gather)(z),
    "supcon": lambda z, y, gather: SupConLoss(0.1, gather_distributed=gather)(z, y),
    "vicreg": lambda z, y, gather: VICRegLoss(gather_distributed=gather)(z[:, 0], z[:, 1]),
}
