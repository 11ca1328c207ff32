"""The transformer feed-forward layer."""

from __future__ import annotations

import torch
from timm.layers import QuickGELU
from torch import nn


def make_activation(name: str) -> nn.Module:
    """Activation module by name: ``gelu`` (exact), ``gelu_tanh`` (tanh approximation), ``quick_gelu``."""
    if name == "gelu":
        return nn.GELU()
    if name == "gelu_tanh":
        return nn.GELU(approximate="tanh")
    if name == "quick_gelu":
        return QuickGELU()
    raise ValueError(f"unknown activation {name!r}; expected gelu, gelu_tanh or quick_gelu")


class Mlp(nn.Module):
    """``fc1 -> act -> dropout -> fc2 -> dropout`` (timm's key names)."""

    def __init__(self, *, dim: int, hidden_dim: int, act: str = "gelu", drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = make_activation(act)
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))
