"""MViT's block: pooling attention and an MLP, each with a residual that follows the grid and the width.

::

    x_norm = norm1(x)
    x = pool_skip(x  or  shortcut_proj_attn(x_norm)) + drop_path(attn(x_norm))
    x_norm = norm2(x)
    x = (x  or  shortcut_proj_mlp(x_norm)) + drop_path(mlp(x_norm))

When the block pools its queries with a stride, the residual is max-pooled to the new grid (kernel ``s + 1``,
stride ``s`` per axis). When the block changes the width, the growth happens either inside attention
(MViTv2, ``expand_in_attention``: ``qkv`` projects to the new width and the residual is projected from the
normalised input) or in the MLP (MViTv1: ``fc2`` projects to the new width and the residual is projected from the
normalised attention output). Parameter names follow timm's ``MultiScaleBlock``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vitzoo.layers.block import drop_path
from vitzoo.layers.mlp import Mlp
from vitzoo.layers.pooling_attention import PoolingAttention
from vitzoo.layers.rel_pos import Grid, RelPosIndex
from vitzoo.layers.token_pool import pool_tokens


class MultiscaleBlock(nn.Module):
    """One MViT block on tokens ``(B, P + T*h*w, dim)`` -> ``(B, P + T'*h'*w', dim_out)`` (module docstring).

    ``attention`` holds the :class:`~vitzoo.layers.pooling_attention.PoolingAttention` options other than the
    widths (kernels, strides, relative positions, residual pooling, prefix tokens, qkv bias).
    """

    def __init__(
        self,
        *,
        dim: int,
        dim_out: int,
        num_heads: int,
        expand_in_attention: bool,
        stride_q: Grid = (1, 1, 1),
        mlp_ratio: float = 4.0,
        norm_eps: float = 1e-6,
        proj_drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path_rate: float = 0.0,
        rel_index: RelPosIndex | None = None,
        **attention,
    ) -> None:
        super().__init__()
        att_dim = dim_out if expand_in_attention else dim
        grows = dim != dim_out
        self.num_prefix_tokens = attention.get("num_prefix_tokens", 1)
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.shortcut_proj_attn = nn.Linear(dim, dim_out) if grows and expand_in_attention else None
        self.shortcut_pool = None
        if math.prod(stride_q) > 1:
            kernel = tuple(s + 1 if s > 1 else s for s in stride_q)
            self.shortcut_pool = nn.MaxPool3d(kernel, stride=stride_q, padding=tuple(k // 2 for k in kernel))
        self.attn = PoolingAttention(
            dim=dim,
            dim_out=att_dim,
            num_heads=num_heads,
            stride_q=stride_q,
            norm_eps=norm_eps,
            proj_drop=proj_drop,
            attn_drop=attn_drop,
            rel_index=rel_index,
            **attention,
        )
        self.drop_path1 = drop_path(drop_path_rate)
        self.norm2 = nn.LayerNorm(att_dim, eps=norm_eps)
        self.shortcut_proj_mlp = nn.Linear(att_dim, dim_out) if grows and not expand_in_attention else None
        self.mlp = Mlp(dim=att_dim, hidden_dim=int(att_dim * mlp_ratio), out_dim=dim_out, drop=proj_drop)
        self.drop_path2 = drop_path(drop_path_rate)

    def forward(
        self,
        x: torch.Tensor,
        grid: Grid,
        rel_tables: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, Grid]:
        """Tokens ``(B, P + L, dim)`` on ``grid`` -> ``(B, P + L', dim_out)`` and the new grid."""
        x_norm = self.norm1(x)
        shortcut = x if self.shortcut_proj_attn is None else self.shortcut_proj_attn(x_norm)
        if self.shortcut_pool is not None:
            shortcut, _ = pool_tokens(shortcut, grid, self.shortcut_pool, self.num_prefix_tokens)
        out, grid = self.attn(x_norm, grid, rel_tables)
        x = shortcut + self.drop_path1(out)
        x_norm = self.norm2(x)
        shortcut = x if self.shortcut_proj_mlp is None else self.shortcut_proj_mlp(x_norm)
        return shortcut + self.drop_path2(self.mlp(x_norm)), grid
