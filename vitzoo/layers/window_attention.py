"""3-D window multi-head self-attention with a learned relative-position bias (Video Swin).

The layer takes a token grid padded to whole windows. Its windows, shifted or not, are read group by group from
that grid (see :func:`vitzoo.layers.windows.window_groups`), each group attends with one fused
``scaled_dot_product_attention`` call whose float ``attn_mask`` is the relative-position bias ``(H, N, N)`` plus
the group's shift mask; the results, collected window by window, return to grid order in one gather. No cyclic
shift of the grid and no per-window mask is ever materialised.
"""

from __future__ import annotations

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
        (pt, ph, pw), (wt, wh, ww) = plan.geometry.padded, plan.geometry.window
        b, c, heads = x.shape[0], x.shape[-1], self.num_heads
        bias = self.relative_bias(plan.index)  # (H, N, N)
        qkv = self.qkv(x)  # (B, Tp, Hp, Wp, 3C)
        # every window's result, window-major over the rolled grid: (B, nt, nh, nw, wt, wh, ww, H, d)
        out = qkv.new_empty(b, pt // wt, ph // wh, pw // ww, wt, wh, ww, heads, c // heads)
        for group in plan.groups:
            nt, nh, nw = group.windows
            q, k, v = rearrange(
                read_group(qkv, group), TO_HEADS, wt=wt, wh=wh, ww=ww, three=3, h=heads
            )  # (B * nW_g, H, N, d) each
            mask = bias if group.mask is None else bias + group.mask  # (H, N, N)
            o = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask[None].to(q.dtype), dropout_p=self.attn_drop if self.training else 0.0
            )  # (B * nW_g, H, N, d); the mask (1, H, N, N): fused CPU kernels take 4-D masks only
            (t0, h0, w0) = (p.first for p in group.parts)
            out[:, t0 : t0 + nt, h0 : h0 + nh, w0 : w0 + nw] = rearrange(
                o, FROM_HEADS, b=b, nt=nt, nh=nh, nw=nw, wt=wt, wh=wh, ww=ww
            )  # a view of o into a slice of out (plain slices: what the legacy ONNX exporter follows)
        out = rearrange(out, "b nt nh nw wt wh ww h d -> b (nt nh nw wt wh ww) (h d)")  # (B, Lp, C), a view
        out = out.index_select(1, plan.order)  # (B, Tp*Hp*Wp, C): grid order, partition and shift undone
        x = rearrange(out, "b (t h w) c -> b t h w c", t=pt, h=ph, w=pw)
        return self.proj_drop(self.proj(x))


TO_HEADS = "b (nt wt) (nh wh) (nw ww) (three h d) -> three (b nt nh nw) h (wt wh ww) d"
FROM_HEADS = "(b nt nh nw) h (wt wh ww) d -> b nt nh nw wt wh ww h d"


def read_group(x: torch.Tensor, group: WindowGroup) -> torch.Tensor:
    """The tokens of a group's windows from the padded grid ``(B, Tp, Hp, Wp, D)``, window after window per axis.

    A view for groups that need no wrap-around; the wrapped window concatenates the two ends of its axis.
    """
    for axis, part in zip((1, 2, 3), group.parts, strict=True):
        slices = [x.narrow(axis, start, length) for start, length in part.reads]
        x = slices[0] if len(slices) == 1 else torch.cat(slices, dim=axis)
    return x  # (B, nt * wt, nh * wh, nw * ww, D)
