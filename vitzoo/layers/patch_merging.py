"""Swin's patch merging: each 2 x 2 group of neighbouring tokens becomes one token (time is kept)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class PatchMerging(nn.Module):
    """``(B, T, H, W, C)`` -> ``(B, T, ceil(H/2), ceil(W/2), out_dim)``: concatenate, LayerNorm, project.

    An odd ``H`` or ``W`` is first padded with a zero row / column (torchvision's ``_patch_merging_pad``), which
    then enters the merged token like any other. The four neighbours are concatenated in torchvision's and timm's
    order ``(h, w) = (0, 0), (1, 0), (0, 1), (1, 1)``; keys ``norm`` and ``reduction`` as theirs.
    """

    def __init__(self, *, dim: int, out_dim: int, norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim, eps=norm_eps)
        self.reduction = nn.Linear(4 * dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = int(x.shape[-3]), int(x.shape[-2])
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))  # (B, T, H', W', C), H' and W' even
        x = rearrange(x, "b t (h dh) (w dw) c -> b t h w (dw dh c)", dh=2, dw=2)  # (B, T, H'/2, W'/2, 4C)
        return self.reduction(self.norm(x))
