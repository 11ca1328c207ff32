"""3-D window multi-head self-attention with a learned relative-position bias (Video Swin).

The layer takes a token grid that is already padded to a multiple of the window and, in shifted blocks, rolled
(see :mod:`vitzoo.layers.windows`); it attends within each window and returns the grid. The relative-position
bias and the shift mask go to ``scaled_dot_product_attention`` as one float ``attn_mask``, so inference runs the
fused kernel; the windows of a block that needs no shift mask share one ``(H, N, N)`` bias (broadcast over the
batch), those of a shifted block get ``(nW, H, N, N)`` (bias + mask), laid out as ``nW * H`` "heads" of each clip.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from timm.layers import trunc_normal_
from torch import nn

from vitzoo.layers.windows import Grid, WindowPlan


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
        return rearrange(self.relative_position_bias_table[index], "n m h -> h n m")

    def attn_mask(self, plan: WindowPlan) -> torch.Tensor:
        """Bias plus shift mask: ``(1, H, N, N)`` without a mask, else ``(nW, H, N, N)``."""
        bias = self.relative_bias(plan.index)[None]  # (1, H, N, N)
        return bias if plan.mask is None else bias + plan.mask[:, None]  # (nW, H, N, N)

    def forward(self, x: torch.Tensor, plan: WindowPlan) -> torch.Tensor:
        """``(B, Tp, Hp, Wp, C)`` (padded, rolled) -> the same shape, attending within windows of ``plan``."""
        (pt, ph, pw), (wt, wh, ww) = plan.geometry.padded, plan.geometry.window
        sizes = dict(nt=pt // wt, nh=ph // wh, nw=pw // ww, wt=wt, wh=wh, ww=ww)
        mask = self.attn_mask(plan)  # (1 or nW, H, N, N)
        to_windows, from_windows = WINDOW_LAYOUTS[plan.mask is not None]
        qkv = self.qkv(x)  # (B, Tp, Hp, Wp, 3C)
        q, k, v = rearrange(qkv, to_windows, three=3, h=self.num_heads, **sizes)  # (B', H', N, d) each
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask.flatten(0, 1)[None].to(q.dtype), dropout_p=self.attn_drop if self.training else 0.0
        )  # (B', H', N, d); the mask (1, H', N, N): fused CPU kernels take 4-D masks only
        return self.proj_drop(self.proj(rearrange(out, from_windows, **sizes)))  # (B, Tp, Hp, Wp, C)


GRID = "b (nt wt) (nh wh) (nw ww)"
# Grid <-> windows for SDPA, by whether each window has its own mask. One mask for all windows: the windows join the
# batch, (B * nW, H, N, d), the (1, H, N, N) bias broadcasts. A mask per window: they join the heads,
# (B, nW * H, N, d), with the (nW * H, N, N) mask broadcast over the batch (fused kernels take 4-D inputs only).
WINDOW_LAYOUTS = {
    False: (
        f"{GRID} (three h d) -> three (b nt nh nw) h (wt wh ww) d",
        f"(b nt nh nw) h (wt wh ww) d -> {GRID} (h d)",
    ),
    True: (
        f"{GRID} (three h d) -> three b (nt nh nw h) (wt wh ww) d",
        f"b (nt nh nw h) (wt wh ww) d -> {GRID} (h d)",
    ),
}
