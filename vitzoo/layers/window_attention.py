"""3-D window multi-head self-attention with a learned relative-position bias (Video Swin).

The layer takes a token grid padded to whole windows. One gather lays its tokens out window by window, the
windows (shifted or not) grouped by the mask they need (see :func:`vitzoo.layers.windows.group_gather`); each
group attends with one fused ``scaled_dot_product_attention`` call whose float ``attn_mask`` is the
relative-position bias ``(H, N, N)`` plus the group's shift mask; the inverse gather returns the results to grid
order. No cyclic shift of the grid and no per-window mask is ever materialised, and the backward pass of the
gathers is one ``index_add`` each (slicing the grid per group would zero-fill a grid-sized gradient per group).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from timm.layers import trunc_normal_
from torch import nn

from vitzoo.layers.bias_attention import attention_with_bias
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
        n = index.shape[0]
        rows = self.relative_position_bias_table.t().index_select(1, index.flatten())  # (H, N * N)
        return rows.view(-1, n, n)  # index_select: its backward (index_add) is 2-5x faster than indexing's

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """One group's attention, ``mask (1, H, N, N)`` (fused CPU kernels take 4-D masks only).

        Training on CPU, where SDPA would take its math path for a bias that needs a gradient, goes through
        :func:`~vitzoo.layers.bias_attention.attention_with_bias` (fused forward, recomputing backward).
        """
        if self.training and self.attn_drop:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.attn_drop)
        if mask.requires_grad and torch.is_grad_enabled() and q.device.type == "cpu":
            return attention_with_bias(q, k, v, mask)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    def forward(self, x: torch.Tensor, plan: WindowPlan) -> torch.Tensor:
        """``(B, Tp, Hp, Wp, C)`` padded to whole windows -> the same shape, attending within the plan's windows."""
        pt, ph, pw = plan.geometry.padded
        n, heads = plan.geometry.window_tokens, self.num_heads
        bias = self.relative_bias(plan.index)  # (H, N, N)
        tokens = rearrange(x, "b t h w c -> b (t h w) c").index_select(1, plan.gather)  # (B, Lp, C) group-major
        outs = []
        qkv = self.qkv(tokens).split(plan.group_tokens, dim=1)  # (B, nW_g * N, 3C) per group
        for group, chunk in zip(plan.groups, qkv, strict=True):
            nw = chunk.shape[1] // n
            q, k, v = rearrange(chunk, "b (nw n) (three h d) -> three (b nw) h n d", nw=nw, three=3, h=heads)
            mask = bias if group.mask is None else bias + group.mask  # (H, N, N)
            o = self.attend(q, k, v, mask[None].to(q.dtype))  # (B * nW_g, H, N, d)
            outs.append(rearrange(o, "(b nw) h n d -> b (nw n) (h d)", nw=nw))
        out = torch.cat(outs, dim=1).index_select(1, plan.order)  # (B, Lp, C): grid order, windows and shift undone
        x = rearrange(out, "b (t h w) c -> b t h w c", t=pt, h=ph, w=pw)
        return self.proj_drop(self.proj(x))
