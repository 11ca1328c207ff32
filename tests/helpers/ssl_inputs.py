"""Shared pieces of the SSL tests: float64 multi-view embeddings and the tiny backbones' names."""

from __future__ import annotations

import torch

IMAGE_BACKBONE = "vit_nano_patch8_32"  # (3, 32, 32), width 64
VIDEO_BACKBONE = "timesformer_nano_patch8_32"  # (3, 4, 32, 32), width 64


def views64(batch: int, num_views: int, dim: int, *, seed: int = 0, requires_grad: bool = False) -> torch.Tensor:
    """Random float64 embeddings ``(batch, num_views, dim)``."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, num_views, dim, generator=g, dtype=torch.float64).requires_grad_(requires_grad)
