"""A convolutional video stem: an overlapping ``Conv3d`` from pixels to a token grid (MViT's patch embedding)."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn


class ConvStem(nn.Module):
    """``Conv3d(kernel, stride, padding)``: clips ``(B, C, T, H, W)`` -> tokens ``(B, T'*h*w, D)`` and ``(T', h, w)``.

    Unlike :class:`~vitzoo.layers.embed.TubeletEmbed` the kernel may overlap its neighbours (MViT: ``3x7x7`` with
    stride ``2x4x4`` and padding ``1x3x3``). The parameter is ``proj`` (timm's and vitzoo's patch-embedding name).
    """

    def __init__(
        self,
        *,
        in_chans: int,
        embed_dim: int,
        kernel: tuple[int, int, int],
        stride: tuple[int, int, int],
        padding: tuple[int, int, int],
    ) -> None:
        super().__init__()
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=kernel, stride=stride, padding=padding)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        if x.ndim != 5:
            raise ValueError(f"ConvStem expects (B, C, T, H, W), got shape {tuple(x.shape)}")
        x = self.proj(x)  # (B, D, T', h, w)
        grid = tuple(x.shape[2:])
        return rearrange(x, "b d t h w -> b (t h w) d"), grid  # (B, T'*h*w, D)
