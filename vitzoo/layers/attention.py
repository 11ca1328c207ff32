"""Multi-head self-attention through ``torch.nn.functional.scaled_dot_product_attention``.

No attention matrix is ever materialised by vitzoo itself: every attention, including the factorised
variants, is expressed as SDPA over regrouped tensors so that the fused (flash / memory-efficient /
CPU flash) kernels apply.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class Attention(nn.Module):
    """Self-attention with a fused ``qkv`` projection (timm's key names: ``qkv``, ``q_norm``, ``proj``).

    ``qk_norm`` applies LayerNorm per head to queries and keys before the dot product.
    """

    def __init__(
        self,
        *,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        qk_norm: bool = False,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.q_norm = nn.LayerNorm(self.head_dim, eps=norm_eps) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim, eps=norm_eps) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def project_qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(..., L, D)`` -> queries, keys, values, each ``(..., H, L, d)``."""
        qkv = self.qkv(x)  # (..., L, 3D)
        q, k, v = rearrange(qkv, "... l (three h d) -> three ... h l d", three=3, h=self.num_heads)
        return self.q_norm(q), self.k_norm(k), v

    def project_out(self, out: torch.Tensor) -> torch.Tensor:
        """``(..., H, L, d)`` -> ``(..., L, D)`` through the output projection."""
        out = rearrange(out, "... h l d -> ... l (h d)")
        return self.proj_drop(self.proj(out))

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Fused SDPA; attention dropout only in training mode."""
        dropout_p = self.attn_drop if self.training else 0.0
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = self.project_qkv(x)  # (..., H, L, d) each
        return self.project_out(self.attend(q, k, v, attn_mask))
