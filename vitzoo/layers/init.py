"""Weight initialisation shared by all models (timm's default ViT scheme)."""

from __future__ import annotations

from timm.layers import trunc_normal_
from torch import nn


def init_vit_weights(module: nn.Module) -> None:
    """Truncated-normal (std 0.02) linear weights and zero biases; LayerNorm to identity.

    Apply with ``model.apply(init_vit_weights)``; convolutions keep PyTorch's default init, as in timm.
    """
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
