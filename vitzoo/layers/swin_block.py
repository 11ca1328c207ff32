"""The Swin block on a 3-D token grid: ``x + DropPath(W-MSA(LN(x)))``, then ``x + DropPath(MLP(LN(x)))``.

Window attention runs on the grid padded to whole windows (shifted windows included, see
:mod:`vitzoo.layers.window_attention`); the result is cut back to the grid (see :mod:`vitzoo.layers.windows` for
what padded tokens do). Whether a block shifts is part of the :class:`~vitzoo.layers.windows.WindowPlan` its stage
hands it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vitzoo.layers.block import drop_path
from vitzoo.layers.mlp import Mlp
from vitzoo.layers.window_attention import WindowAttention
from vitzoo.layers.windows import Grid, WindowPlan


class SwinBlock(nn.Module):
    """Pre-norm Swin block (keys ``norm1, attn, norm2, mlp`` as timm's)."""

    def __init__(
        self,
        *,
        dim: int,
        num_heads: int,
        window: Grid,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        act: str = "gelu",
        norm_eps: float = 1e-5,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = WindowAttention(
            dim=dim, num_heads=num_heads, window=window, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop
        )
        self.drop_path1 = drop_path(drop_path_rate)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim=dim, hidden_dim=int(dim * mlp_ratio), act=act, drop=proj_drop)
        self.drop_path2 = drop_path(drop_path_rate)

    def forward(self, x: torch.Tensor, plan: WindowPlan) -> torch.Tensor:
        """``(B, T, H, W, C)`` -> the same shape."""
        t, h, w = plan.geometry.grid
        pt, ph, pw = plan.geometry.pad
        y = self.norm1(x)
        if pt or ph or pw:
            y = F.pad(y, (0, 0, 0, pw, 0, ph, 0, pt))  # (B, Tp, Hp, Wp, C), zero tokens at the ends
        y = self.attn(y, plan)  # (B, Tp, Hp, Wp, C); shifted windows are read and written in place, no roll
        x = x + self.drop_path1(y[:, :t, :h, :w])  # (B, T, H, W, C)
        return x + self.drop_path2(self.mlp(self.norm2(x)))
