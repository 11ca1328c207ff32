"""MViT's analytic FLOPs: :mod:`vitzoo.flops`' rule (every product ``2 * M * N * K``), extended to convolutions.

Per clip, with ``P`` prefix tokens, a block whose input grid has ``L`` tokens, whose queries end on ``Lq`` and
keys on ``Lk`` tokens, input width ``D_in``, attention width ``D`` (all heads), output width ``D_out``:

- ``qkv``: ``2 (P + L) D_in 3D``, plus the depthwise pooling convolutions, counted as ``torch.utils.flop_counter``
  counts any convolution: ``2 x kernel volume x D x output positions`` (padded taps included; prefix tokens are
  not pooled), once for the queries (``Lq`` positions) and once each for keys and values (``Lk``);
- ``attention``: scores and weighted sum ``2 x 2 (P + Lq)(P + Lk) D``, plus, with relative positions, the
  query-table products of the three axes ``2 Lq D (kt + kh + kw)`` (``(kt, kh, kw)``: the key grid);
- ``proj``: the output projection ``2 (P + Lq) D D`` and a residual projection where the width grows
  (``2 (P + L) D_in D_out`` in attention, ``2 (P + Lq) D D_out`` in the MLP);
- ``mlp``: ``2 (P + Lq) D H + 2 (P + Lq) H D_out`` with ``H = mlp_ratio x D``;
- ``embed``: the stem convolution, ``2 x (C x kernel volume) x D x stem positions``; ``head`` as everywhere.

Max-pooled residuals, norms, softmax and the absolute position add are not counted (as for every family).
"""

from __future__ import annotations

import math

from vitzoo.flops import Flops, head_flops, matmul_flops
from vitzoo.layers.token_pool import pools
from vitzoo.models.mvit_config import MViTConfig, block_grids, block_specs


def mvit_flops(cfg: MViTConfig) -> Flops:
    """Forward FLOPs of one clip through the model ``cfg`` describes (see the module docstring)."""
    p = int(cfg.class_token)
    grid = cfg.grid_thw
    total = Flops(embed=matmul_flops(math.prod(grid), cfg.widths[0], cfg.in_chans * math.prod(cfg.patch_kernel)))
    for spec, g in zip(block_specs(cfg), block_grids(cfg, grid), strict=True):
        n_in, lq, lk = math.prod(g.input), math.prod(g.q), math.prod(g.kv)
        d = spec.attention_dim
        pooling = 0
        if pools(spec.kernel_q, spec.stride_q):
            pooling += 2 * math.prod(spec.kernel_q) * d * lq
        if pools(spec.kernel_kv, spec.stride_kv):
            pooling += 2 * 2 * math.prod(spec.kernel_kv) * d * lk
        rel_pos = 2 * lq * d * sum(g.kv) if cfg.rel_pos else 0
        grows = spec.dim != spec.dim_out
        shortcut = 0
        if grows:
            shortcut = (
                matmul_flops(p + n_in, spec.dim_out, spec.dim)
                if cfg.expand_in_attention
                else matmul_flops(p + lq, spec.dim_out, d)
            )
        hidden = int(d * cfg.mlp_ratio)
        total += Flops(
            qkv=matmul_flops(p + n_in, 3 * d, spec.dim) + pooling,
            attention=2 * matmul_flops(p + lq, p + lk, d) + rel_pos,
            proj=matmul_flops(p + lq, d, d) + shortcut,
            mlp=matmul_flops(p + lq, hidden, d) + matmul_flops(p + lq, spec.dim_out, hidden),
        )
    return total + head_flops(num_features=cfg.widths[-1], num_classes=cfg.num_classes)


def rel_pos_extra_flops(cfg: MViTConfig) -> int:
    """Products vitzoo executes beyond :func:`mvit_flops` per clip: with relative positions, attention runs at
    head size ``d + kt + kh + kw`` (the bias enters through the dot products, see
    :func:`vitzoo.layers.rel_pos.augment_with_rel_pos`), ``2 x 2 (P + Lq)(P + Lk) H (kt + kh + kw)`` per block.
    Not part of the model's FLOPs (the benchmarks' GFLOP/s use those); stated so that a count of executed
    products can be checked."""
    if not cfg.rel_pos:
        return 0
    p = int(cfg.class_token)
    extra = 0
    for spec, g in zip(block_specs(cfg), block_grids(cfg, cfg.grid_thw), strict=True):
        lq, lk = math.prod(g.q), math.prod(g.kv)
        extra += 2 * matmul_flops(p + lq, p + lk, spec.num_heads * sum(g.kv))
    return extra
