"""Multiscale Vision Transformers' pooling attention (Fan et al., 2021; Li et al., 2022).

``qkv`` projects the tokens ``(B, P + T*h*w, D_in)`` to queries, keys and values of width ``D`` (``D > D_in`` when
the block grows the channels inside attention, MViTv2); each of the three is then pooled over the grid with its
own depthwise ``Conv3d`` (kernel ``k``, stride ``s``, padding ``k // 2``, one filter per head channel shared by the
heads) followed by a per-head LayerNorm. Pooling the queries with a stride downsamples the block's output grid;
pooling keys and values only makes attention cheaper. The class token is not pooled but attends and is attended
at every scale (:func:`vitzoo.layers.token_pool.pool_tokens`).

MViTv2 adds, per the config: decomposed relative position embeddings (:mod:`vitzoo.layers.rel_pos`, entering
SDPA's dot products as extra query and key channels rather than as an ``(Lq, Lk)`` float mask) and residual
pooling (the pooled queries added to the attention output, with or without the class token). Parameter names
follow timm's ``MultiScaleAttention`` (``qkv``, ``pool_q``, ``norm_q``, ..., ``rel_pos_h``, ``proj``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from timm.layers import trunc_normal_
from torch import nn

from vitzoo.layers.rel_pos import Grid, RelPosIndex, augment_with_rel_pos
from vitzoo.layers.token_pool import pool_tokens, pools


def depthwise_pool(channels: int, kernel: Grid, stride: Grid, norm_eps: float) -> tuple[nn.Module, nn.Module]:
    """A depthwise ``Conv3d`` (no bias, padding ``kernel // 2``) and the LayerNorm that follows it."""
    conv = nn.Conv3d(
        channels, channels, kernel, stride=stride, padding=tuple(k // 2 for k in kernel), groups=channels, bias=False
    )
    return conv, nn.LayerNorm(channels, eps=norm_eps)


class PoolingAttention(nn.Module):
    """Multi-head pooling attention over a token grid (see the module docstring).

    Args:
        dim, dim_out: input width and attention width (``dim_out`` heads x head width).
        kernel_q, stride_q, kernel_kv, stride_kv: pooling of queries and of keys/values; no pooling layer is
            made where kernel and stride are all ones.
        rel_pos: ``(spatial, temporal)`` relative-position table lengths, or None for no relative positions.
        rel_index: the distance tables shared by the model's attention layers (required with ``rel_pos``).
        residual_pool: add the pooled queries to the attention output (MViTv2).
        residual_with_cls: include the prefix tokens in that residual (timm's image models do; torchvision's and
            SlowFast's video models do not).
        proj_drop, attn_drop: dropout after the output projection, and on the attention probabilities.
    """

    def __init__(
        self,
        *,
        dim: int,
        dim_out: int,
        num_heads: int,
        kernel_q: Grid = (1, 1, 1),
        stride_q: Grid = (1, 1, 1),
        kernel_kv: Grid = (1, 1, 1),
        stride_kv: Grid = (1, 1, 1),
        rel_pos: tuple[int, int] | None = None,
        rel_index: RelPosIndex | None = None,
        residual_pool: bool = False,
        residual_with_cls: bool = False,
        num_prefix_tokens: int = 1,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        proj_drop: float = 0.0,
        attn_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim_out % num_heads:
            raise ValueError(f"dim_out={dim_out} is not divisible by num_heads={num_heads}")
        if rel_pos is not None and rel_index is None:
            raise ValueError("relative positions need the model's RelPosIndex (rel_index=)")
        self.num_heads = num_heads
        self.head_dim = d = dim_out // num_heads
        self.num_prefix_tokens = num_prefix_tokens
        self.residual_pool = residual_pool
        self.residual_with_cls = residual_with_cls
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, 3 * dim_out, bias=qkv_bias)
        q_pooled, kv_pooled = pools(kernel_q, stride_q), pools(kernel_kv, stride_kv)
        self.pool_q, self.norm_q = depthwise_pool(d, kernel_q, stride_q, norm_eps) if q_pooled else (None, None)
        self.pool_k, self.norm_k = depthwise_pool(d, kernel_kv, stride_kv, norm_eps) if kv_pooled else (None, None)
        self.pool_v, self.norm_v = depthwise_pool(d, kernel_kv, stride_kv, norm_eps) if kv_pooled else (None, None)
        self.rel_index = rel_index
        if rel_pos is not None:
            spatial, temporal = rel_pos
            self.rel_pos_h = nn.Parameter(trunc_normal_(torch.zeros(spatial, d), std=0.02))
            self.rel_pos_w = nn.Parameter(trunc_normal_(torch.zeros(spatial, d), std=0.02))
            self.rel_pos_t = nn.Parameter(trunc_normal_(torch.zeros(temporal, d), std=0.02))
        else:
            self.rel_pos_h = self.rel_pos_w = self.rel_pos_t = None
        self.proj = nn.Linear(dim_out, dim_out)
        self.proj_drop = nn.Dropout(proj_drop)

    def _pool(
        self, x: torch.Tensor, grid: Grid, pool: nn.Module | None, norm: nn.Module | None
    ) -> tuple[torch.Tensor, Grid]:
        """Per-head tokens ``(B, H, P + L, d)`` pooled and normalised (unchanged without a pooling layer)."""
        if pool is None:
            return x, grid
        x, grid = pool_tokens(x, grid, pool, self.num_prefix_tokens)
        return norm(x), grid

    def forward(
        self,
        x: torch.Tensor,
        grid: Grid,
        rel_tables: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, Grid]:
        """Tokens ``(B, P + L, D_in)`` on ``grid`` -> ``(B, P + L', D)`` on the query grid, and that grid.

        ``rel_tables``: ``(t, h, w)`` tables to use instead of the parameters (resampled for another input size).
        """
        qkv = self.qkv(x)  # (B, N, 3D)
        q, k, v = rearrange(qkv, "b n (three y d) -> three b y n d", three=3, y=self.num_heads)  # (B, H, N, d) each
        q, q_grid = self._pool(q, grid, self.pool_q, self.norm_q)  # (B, H, P + Lq, d)
        k, k_grid = self._pool(k, grid, self.pool_k, self.norm_k)  # (B, H, P + Lk, d)
        v, _ = self._pool(v, grid, self.pool_v, self.norm_v)
        dropout_p = self.attn_drop if self.training else 0.0
        if self.rel_pos_h is None:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)  # (B, H, P + Lq, d)
        else:
            tables = rel_tables if rel_tables is not None else (self.rel_pos_t, self.rel_pos_h, self.rel_pos_w)
            augmented = augment_with_rel_pos(q, k, v, q_grid, k_grid, tables, self.rel_index, self.num_prefix_tokens)
            out = F.scaled_dot_product_attention(*augmented, dropout_p=dropout_p, scale=1.0)  # (B, H, P + Lq, d + c)
            out = out[..., : q.shape[-1]]  # (B, H, P + Lq, d): the values' zero channels cut off
        if self.residual_pool:
            p = 0 if self.residual_with_cls else self.num_prefix_tokens
            out = out + (F.pad(q[:, :, p:], (0, 0, p, 0)) if p else q)  # prefix rows unchanged unless with_cls
        out = rearrange(out, "b y n d -> b n (y d)")  # (B, P + Lq, D)
        return self.proj_drop(self.proj(out)), q_grid
