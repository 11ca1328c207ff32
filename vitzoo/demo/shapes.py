"""Synthetic images for pre-training the demo's image ViT: which shape, and in which quadrant.

Each image is a noisy dark background with one bright shape (square, disk, triangle or cross) of
random size and brightness. The label is ``shape * 4 + quadrant``, so the network must learn both what
an object is and where it is, which is what the video task (where is it going?) builds on.
"""

from __future__ import annotations

import torch

SHAPES = ("square", "disk", "triangle", "cross")
NUM_CLASSES = len(SHAPES) * 4


def _mask(shape: str, size: int, radius: float, cy: float, cx: float) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32)
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    dy, dx = y - cy, x - cx
    if shape == "square":
        return (dy.abs() <= radius) & (dx.abs() <= radius)
    if shape == "disk":
        return dy**2 + dx**2 <= radius**2
    if shape == "triangle":
        return (dy <= radius) & (dy >= -radius) & (dx.abs() <= (dy + radius) / 2)
    if shape == "cross":
        thin = radius / 3
        return ((dy.abs() <= radius) & (dx.abs() <= thin)) | ((dx.abs() <= radius) & (dy.abs() <= thin))
    raise ValueError(f"unknown shape {shape!r}")


def make_shape_images(num: int, *, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``num`` RGB images ``(num, 3, size, size)`` in [0, 1] and labels ``(num,)`` in ``[0, NUM_CLASSES)``."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(num, 3, size, size, generator=g) * 0.25
    labels = torch.empty(num, dtype=torch.long)
    for i in range(num):
        shape = int(torch.randint(len(SHAPES), (1,), generator=g))
        quadrant = int(torch.randint(4, (1,), generator=g))
        radius = float(torch.empty(1).uniform_(size * 0.08, size * 0.16, generator=g))
        half = size / 2
        lo_y, lo_x = (quadrant // 2) * half, (quadrant % 2) * half
        cy = lo_y + float(torch.empty(1).uniform_(radius, half - radius, generator=g))
        cx = lo_x + float(torch.empty(1).uniform_(radius, half - radius, generator=g))
        colour = torch.empty(3, 1, 1).uniform_(0.6, 1.0, generator=g)
        mask = _mask(SHAPES[shape], size, radius, cy, cx)
        images[i] = torch.where(mask, colour.expand(3, size, size), images[i])
        labels[i] = shape * 4 + quadrant
    return images, labels
