"""The transformer feed-forward layer."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from timm.layers import QuickGELU
from torch import nn

# Activations that can overwrite their input (``quick_gelu`` cannot without a temporary of the same size).
_INPLACE = {
    "gelu": partial(torch.ops.aten.gelu_, approximate="none"),
    "gelu_tanh": partial(torch.ops.aten.gelu_, approximate="tanh"),
}


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
    """``fc1 -> act -> dropout -> fc2 -> dropout`` (timm's key names); ``out_dim`` (default ``dim``) is fc2's width.

    With autograd off (``torch.no_grad`` / ``torch.inference_mode``) the GELU overwrites the ``fc1`` output,
    which nothing else holds, so inference keeps one ``(..., hidden_dim)`` buffer instead of two: that
    buffer pair is the peak of a ViT inference step. Outputs are bit-identical. A forward hook on ``fc1``
    switches this off (the hook may keep the tensor).
    """

    def __init__(
        self, *, dim: int, hidden_dim: int, act: str = "gelu", drop: float = 0.0, out_dim: int | None = None
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = make_activation(act)
        self.act_inplace: Callable[[torch.Tensor], torch.Tensor] | None = _INPLACE.get(act)
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_dim, dim if out_dim is None else out_dim)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)  # (..., hidden_dim), owned here
        inplace = self.act_inplace is not None and not torch.is_grad_enabled() and not self.fc1._forward_hooks
        h = self.act_inplace(h) if inplace else self.act(h)
        return self.drop2(self.fc2(self.drop1(h)))
