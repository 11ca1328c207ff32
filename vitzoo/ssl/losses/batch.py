"""Shared input handling of the losses: multi-view embeddings ``(B, V, D)`` and labels."""

from __future__ import annotations

import torch
from einops import rearrange


def check_views(z: torch.Tensor, *, min_views: int = 1, name: str = "z") -> None:
    """Raise ``ValueError`` unless ``z`` is ``(B, V, D)`` with ``V >= min_views``."""
    if z.ndim != 3:
        raise ValueError(f"{name} must be multi-view embeddings (B, V, D), got shape {tuple(z.shape)}")
    if z.shape[1] < min_views:
        raise ValueError(f"{name} has {z.shape[1]} view(s) per sample; this loss needs at least {min_views}")


def flatten_views(z: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, D)`` with labels ``(N,)`` pass through; ``(B, V, D)`` with labels ``(B,)`` -> ``(B V, D)``, ``(B V,)``.

    Every view keeps its sample's label (views are laid out sample-major: sample ``b``'s views are rows
    ``b V .. b V + V - 1``).
    """
    if z.ndim == 3:
        labels = labels.repeat_interleave(z.shape[1])  # (B V,)
        z = rearrange(z, "b v d -> (b v) d")
    if z.ndim != 2 or labels.shape != z.shape[:1]:
        raise ValueError(
            f"expected embeddings (N, D) with labels (N,) or (B, V, D) with labels (B,), "
            f"got {tuple(z.shape)} and {tuple(labels.shape)}"
        )
    return z, labels


def pairwise_distances(z: torch.Tensor, *, squared: bool = False) -> torch.Tensor:
    """Euclidean distances ``(N, N)`` between rows of ``z`` ``(N, D)`` (squared if asked).

    Computed from differences, not from the Gram matrix, so ``d(i, i)`` is exactly 0 and the gradient at
    zero distance is 0 rather than NaN.
    """
    d = torch.cdist(z, z, compute_mode="donot_use_mm_for_euclid_dist")  # (N, N)
    return d.square() if squared else d
