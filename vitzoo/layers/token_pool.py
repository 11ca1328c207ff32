"""Pool a token grid with a 3-D pooling module (a strided depthwise ``Conv3d``, a ``MaxPool3d``), as MViT does.

Tokens are ``(..., P + T*h*w, C)``: ``P`` prefix (class) tokens, then the grid flattened ``(t h w)``. The prefix
tokens are not pooled; they are put back in front of the pooled grid (MViT's class-token rule: the class token
takes part in attention at every scale but never in pooling).

The grid goes through the pooling module channels-last (``(N, C, T, h, w)`` with ``channels_last_3d`` strides):
for a depthwise ``Conv3d`` on CPU that is several times faster than the channels-first layout, and the pooled
map is a view of the pooled tokens, so the only copy is the one that gathers the grid from its token layout (made
here, densely: a strided view handed to the convolution is copied twice on its way to the CPU kernel).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from einops import rearrange
from torch import nn

Grid = tuple[int, int, int]  # (T, h, w)


def pools(kernel: Sequence[int], stride: Sequence[int]) -> bool:
    """Whether a pooling of this kernel and stride changes anything (torchvision's and timm's rule)."""
    return math.prod(kernel) > 1 or math.prod(stride) > 1


def pool_tokens(x: torch.Tensor, grid: Grid, pool: nn.Module, num_prefix_tokens: int) -> tuple[torch.Tensor, Grid]:
    """Tokens ``(..., P + T*h*w, C)`` -> pooled tokens ``(..., P + T'*h'*w', C)`` and the grid ``(T', h', w')``."""
    p = num_prefix_tokens
    t, h, w = grid
    lead = x.shape[:-2]
    maps = rearrange(x[..., p:, :], "... (t h w) c -> (...) t h w c", t=t, h=h, w=w).contiguous()  # (N, T, h, w, C)
    pooled = pool(rearrange(maps, "n t h w c -> n c t h w"))  # (N, C, T', h', w'), channels-last strides
    new_grid = tuple(pooled.shape[2:])
    out = rearrange(pooled, "n c t h w -> n (t h w) c").unflatten(0, lead)  # (..., T'*h'*w', C), a view
    if p:
        out = torch.cat([x[..., :p, :], out], dim=-2)  # (..., P + T'*h'*w', C)
    return out, new_grid


def pool_output_size(size: Sequence[int], kernel: Sequence[int], stride: Sequence[int]) -> Grid:
    """Grid after a pooling of ``kernel`` / ``stride`` with MViT's padding ``kernel // 2`` on every axis."""
    return tuple((n + 2 * (k // 2) - k) // s + 1 for n, k, s in zip(size, kernel, stride, strict=True))
