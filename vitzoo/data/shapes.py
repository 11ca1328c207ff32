"""Binary masks of the four synthetic shapes shared by the demo's images and videos."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

SHAPES = ("square", "disk", "triangle", "cross")

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def shape_mask(shape: str, dy: Array, dx: Array, radius: float) -> Array:
    """Boolean mask of ``shape`` centred at offset zero, from per-pixel offsets ``dy, dx`` to the centre.

    ``dy`` and ``dx`` broadcast against each other (NumPy arrays or torch tensors); ``radius`` is half the
    shape's extent. The triangle points up (apex at ``dy = -radius``); the cross has arms a third as thick.
    """
    if shape == "square":
        return (abs(dy) <= radius) & (abs(dx) <= radius)
    if shape == "disk":
        return dy**2 + dx**2 <= radius**2
    if shape == "triangle":
        return (dy <= radius) & (dy >= -radius) & (abs(dx) <= (dy + radius) / 2)
    if shape == "cross":
        thin = radius / 3
        return ((abs(dy) <= radius) & (abs(dx) <= thin)) | ((abs(dx) <= radius) & (abs(dy) <= thin))
    raise ValueError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")
