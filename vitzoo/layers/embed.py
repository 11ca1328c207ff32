"""Pixels to tokens: 2-D patches for images, 3-D tubelets for videos."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn


class PatchEmbed(nn.Module):
    """Non-overlapping ``p x p`` patches, linearly embedded with a strided Conv2d.

    Input ``(B, C, H, W)``; output ``(B, N, D)`` with ``N = (H/p) * (W/p)`` in row-major order.
    """

    def __init__(self, *, patch_size: int, in_chans: int, embed_dim: int, bias: bool = True) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size, bias=bias)

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """Patch grid for an image of ``height x width``; raises if it does not divide evenly."""
        p = self.patch_size
        if height % p or width % p:
            raise ValueError(f"image size {height}x{width} is not divisible by patch size {p}")
        return height // p, width // p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"PatchEmbed expects (B, C, H, W), got shape {tuple(x.shape)}")
        self.grid(x.shape[-2], x.shape[-1])
        x = self.proj(x)  # (B, D, h, w)
        return rearrange(x, "b d h w -> b (h w) d")  # (B, N, D)


class TubeletEmbed(nn.Module):
    """Non-overlapping ``t x p x p`` tubelets, linearly embedded with a strided Conv3d.

    Input ``(B, C, T, H, W)`` (torchvision's video layout); output the token grid ``(B, T/t, H/p, W/p, D)``.
    """

    def __init__(self, *, tubelet_size: int, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.tubelet_size = tubelet_size
        self.patch_size = patch_size
        kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=kernel, stride=kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            raise ValueError(f"TubeletEmbed expects (B, C, T, H, W), got shape {tuple(x.shape)}")
        t, p = self.tubelet_size, self.patch_size
        frames, height, width = x.shape[-3:]
        if frames % t or height % p or width % p:
            raise ValueError(f"clip of {frames} frames at {height}x{width} does not divide into {t}x{p}x{p} tubelets")
        x = self.proj(x)  # (B, D, T', h, w)
        # one copy here so every later residual add and LayerNorm sees contiguous channels-last tokens
        return rearrange(x, "b d t h w -> b t h w d").contiguous()  # (B, T', h, w, D)
