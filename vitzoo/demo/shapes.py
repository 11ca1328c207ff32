"""Synthetic images for pre-training the demo's image ViT: which shape, and in which quadrant.

Each image is a noisy dark background with one bright shape (square, disk, triangle or cross) of
random size and brightness. The label is ``shape * 4 + quadrant``, so the network must learn both what
an object is and where it is, which is what the video task (where is it going?) builds on.
"""

from __future__ import annotations

import torch

from vitzoo.data.shapes import SHAPES, shape_mask

NUM_CLASSES = len(SHAPES) * 4


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
        coords = torch.arange(size, dtype=torch.float32)
        mask = shape_mask(SHAPES[shape], coords[:, None] - cy, coords[None, :] - cx, radius)  # (size, size)
        images[i] = torch.where(mask, colour.expand(3, size, size), images[i])
        labels[i] = shape * 4 + quadrant
    return images, labels
