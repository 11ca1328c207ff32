"""3-D window multi-head self-attention with a learned relative-position bias (Video Swin).

The layer takes a token grid padded to whole windows. Its windows, shifted or not, are read group by group from
that grid (see :func:`vitzoo.layers.windows.window_groups`), each group attends with one fused
``scaled_dot_product_attention`` call whose float ``attn_mask`` is the relative-position bias ``(H, N, N)`` plus
the group's shift mask, and the results are written back where they were read: no cyclic shift of the grid, no
per-window mask is ever materialised.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from einops import rearrange
from timm.layers import trunc_normal_
from torch import nn

from vitzoo.layers.windows import Grid, WindowGroup, WindowPlan


class WindowAttention(nn.Module):
    """Window attention with torchvision / timm key names (``qkv``, ``proj``, ``relative_position_bias_table``).

    ``window`` is the configured window: the bias table has one row per relative offset in it,
    ``(2 Wt - 1)(2 Wh - 1)(2 Ww - 1)`` rows of ``num_heads`` values.
    """

    def __init__(
        self,
        *,
        dim: int,
        num_heads: int,
        window: Grid,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.window = tuple(window)
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        rows = (2 * window[0] - 1) * (2 * window[1] - 1) * (2 * window[2] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(rows, num_heads))
        trunc_normal_(self.relative_position_bias_table, std=0.02)

    def relative_bias(self, index: torch.Tensor) -> torch.Tensor:
        """The bias ``(H, N, N)`` for a window whose token pairs have table rows ``index (N, N)``."""
        return rearrange(self.relative_position_bias_table[index], "n m h -> h n m").contiguous()

    def forward(self, x: torch.Tensor, plan: WindowPlan) -> torch.Tensor:
        """``(B, Tp, Hp, Wp, C)`` padded to whole windows -> the same shape, attending within the plan's windows."""
        wt, wh, ww = plan.geometry.window
        bias = self.relative_bias(plan.index)  # (H, N, N)
        qkv = self.qkv(x)  # (B, Tp, Hp, Wp, 3C)
        out = qkv.new_empty(*x.shape[:-1], self.num_heads, x.shape[-1] // self.num_heads)  # (B, Tp, Hp, Wp, H, d)
        for group in plan.groups:
            nt, nh, nw = group.windows
            q, k, v = rearrange(
                read_group(qkv, group), TO_HEADS, wt=wt, wh=wh, ww=ww, three=3, h=self.num_heads
            )  # (B * nW_g, H, N, d) each
            mask = bias if group.mask is None else bias + group.mask  # (H, N, N)
            o = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask[None].to(q.dtype), dropout_p=self.attn_drop if self.training else 0.0
            )  # (B * nW_g, H, N, d); the mask (1, H, N, N): fused CPU kernels take 4-D masks only
            o = rearrange(
                o, "(b nt nh nw) h (wt wh ww) d -> b nt wt nh wh nw ww h d", nt=nt, nh=nh, nw=nw, wt=wt, wh=wh, ww=ww
            )  # a view, windows and heads apart
            write_group(out, o, group)
        return self.proj_drop(self.proj(rearrange(out, "b t h w nh d -> b t h w (nh d)")))


TO_HEADS = "b (nt wt) (nh wh) (nw ww) (three h d) -> three (b nt nh nw) h (wt wh ww) d"


def read_group(x: torch.Tensor, group: WindowGroup) -> torch.Tensor:
    """The tokens of a group's windows from the padded grid ``(B, Tp, Hp, Wp, D)``, window after window per axis.

    A view for groups that need no wrap-around; the wrapped window concatenates the two ends of its axis.
    """
    for axis, part in zip((1, 2, 3), group.parts, strict=True):
        slices = [x.narrow(axis, start, length) for start, length in part.reads]
        x = slices[0] if len(slices) == 1 else torch.cat(slices, dim=axis)
    return x  # (B, nt * wt, nh * wh, nw * ww, D)


def write_group(out: torch.Tensor, o: torch.Tensor, group: WindowGroup) -> None:
    """Write a group's results ``o (B, nt, wt, nh, wh, nw, ww, H, d)`` into ``out (B, Tp, Hp, Wp, H, d)``, in place,
    every window position back where :func:`read_group` read it."""
    for (t0, lt, dt), (h0, lh, dh), (w0, lw, dw) in itertools.product(*(p.writes for p in group.parts)):
        nt, nh, nw = group.windows
        target = out[:, dt : dt + nt * lt, dh : dh + nh * lh, dw : dw + nw * lw]  # (B, nt * lt, nh * lh, nw * lw, H, d)
        target = target.unflatten(3, (nw, lw)).unflatten(2, (nh, lh)).unflatten(1, (nt, lt))
        target.copy_(o[:, :, t0 : t0 + lt, :, h0 : h0 + lh, :, w0 : w0 + lw])
