"""Momentum (EMA) target networks: BYOL's cosine momentum schedule and the in-place update.

BYOL (Grill et al., 2020, section 3.2): after every optimizer update the target parameters become
``xi <- tau xi + (1 - tau) theta`` with ``tau`` rising from ``tau_base = 0.996`` to 1 on a cosine:

    tau_k = 1 - (1 - tau_base) (cos(pi k / K) + 1) / 2

Here ``k = step - 1`` and ``K = total_steps - 1`` for the 1-based update ``step`` of ``total_steps`` (as
lightly's ``cosine_schedule``), so the first update uses exactly ``tau_base`` and the last exactly
``final``.

Buffers (BatchNorm running statistics and counters) are **copied** from the online network, not averaged
(timm's ``ModelEmaV3(exclude_buffers=True)`` does the same). The target runs in training mode, where
BatchNorm normalises with the batch's own statistics, so its running statistics only matter if the target
is ever evaluated; copying keeps them a well-defined function of the online network.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vitzoo.schema import check_range


def cosine_momentum(step: int, total_steps: int, *, base: float = 0.996, final: float = 1.0) -> float:
    """``tau`` for the 1-based update ``step`` of ``total_steps`` (see the module docstring)."""
    check_range("step", step, low=1, high=total_steps, error=ValueError)
    if total_steps == 1:
        return final
    progress = (step - 1) / (total_steps - 1)
    return final - (final - base) * (math.cos(math.pi * progress) + 1) / 2


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """``target`` parameters <- ``momentum * target + (1 - momentum) * online``; buffers copied from ``online``."""
    check_range("momentum", momentum, low=0, high=1, error=ValueError)
    for (name, t), (online_name, o) in zip(target.named_parameters(), online.named_parameters(), strict=True):
        if name != online_name:
            raise ValueError(f"target and online networks differ: {name} vs {online_name}")
        t.mul_(momentum).add_(o.detach(), alpha=1.0 - momentum)
    for t, o in zip(target.buffers(), online.buffers(), strict=True):
        t.copy_(o)
