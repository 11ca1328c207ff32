"""Swin's stem: clips of any size to a tubelet token grid, padding the clip up to whole tubelets."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PaddedTubeletEmbed(nn.Module):
    """``(B, C, T, H, W)`` -> ``(B, ceil(T/t), ceil(H/p), ceil(W/p), D)``, then an optional LayerNorm.

    Frames, rows and columns missing to the next multiple of the tubelet are zeros appended at the end, as in
    torchvision's ``PatchEmbed3d``; the tubelets that hold them are ordinary tokens from then on. Keys ``proj``
    (the strided ``Conv3d``) and ``norm``.
    """

    def __init__(
        self, *, tubelet_size: int, patch_size: int, in_chans: int, embed_dim: int, norm: bool, norm_eps: float
    ) -> None:
        super().__init__()
        self.kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=self.kernel, stride=self.kernel)
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            raise ValueError(f"PaddedTubeletEmbed expects (B, C, T, H, W), got shape {tuple(x.shape)}")
        pt, ph, pw = ((k - int(s) % k) % k for s, k in zip(x.shape[-3:], self.kernel, strict=True))
        if pt or ph or pw:
            x = F.pad(x, (0, pw, 0, ph, 0, pt))  # (B, C, T', H', W'), whole tubelets
        x = self.proj(x).permute(0, 2, 3, 4, 1)  # (B, T/t, H/p, W/p, D)
        return self.norm(x)
