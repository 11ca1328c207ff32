"""MViT's configuration: the stage layout as data, and the per-block records it expands to.

A stage is a run of blocks at one width, head count and key/value pooling stride; its first block pools the
queries with the stage's stride (halving the frame, as a CNN stage would). torchvision spells the same layout
block by block (a list of ``MSBlockConfig``); :func:`block_specs` expands the per-stage form into those records
(one :class:`BlockSpec` per block), which is what the model is built from and what the torchvision converter
compares against. Two rules place the per-block details, both data:

- ``expand_in_attention`` (MViTv2): a stage's first block grows the width inside attention; otherwise
  (MViTv1) the previous stage's last block grows it in its MLP.
- ``pool_q_every_block`` (MViTv2): every block pools its queries (stride 1 except at a stage's first block);
  otherwise (MViTv1) only the strided first blocks do.
"""

from __future__ import annotations

from dataclasses import dataclass

from vitzoo import schema
from vitzoo.config import BaseConfig, GlobalPool, StagedConfig
from vitzoo.layers.rel_pos import table_lengths
from vitzoo.layers.token_pool import pool_output_size, pools
from vitzoo.registry import CONFIGS

Triple = tuple[int, int, int]
ONES: Triple = (1, 1, 1)


@CONFIGS.register("MViTConfig")
@dataclass
class MViTConfig(StagedConfig):
    """A Multiscale Vision Transformer (MViTv1 and MViTv2, video).

    Stem: a ``Conv3d`` of ``patch_kernel`` / ``patch_stride`` / ``patch_padding`` from pixels to ``widths[0]``.
    Stage ``s``: ``depths[s]`` blocks of width ``widths[s]`` with ``num_heads[s]`` heads; its first block pools
    queries with stride ``q_strides[s]``; every block pools keys and values with stride ``kv_strides[s]``
    (SlowFast's "adaptive" strides: the first stage's, divided by the query strides so far). Pooling kernels
    are ``kernel_q`` and ``kernel_kv`` everywhere. ``rel_pos``: decomposed relative position embeddings in every
    block (MViTv2) instead of absolute separable space / time / class tables added after the stem (MViTv1).
    """

    num_frames: int = 16
    patch_kernel: Triple = (3, 7, 7)
    patch_stride: Triple = (2, 4, 4)
    patch_padding: Triple = (1, 3, 3)
    depths: tuple[int, ...] = (1, 2, 11, 2)
    widths: tuple[int, ...] = (96, 192, 384, 768)
    num_heads: tuple[int, ...] = (1, 2, 4, 8)
    q_strides: tuple[Triple, ...] = ((1, 1, 1), (1, 2, 2), (1, 2, 2), (1, 2, 2))
    kv_strides: tuple[Triple, ...] = ((1, 8, 8), (1, 4, 4), (1, 2, 2), (1, 1, 1))
    kernel_q: Triple = (3, 3, 3)
    kernel_kv: Triple = (3, 3, 3)
    pool_q_every_block: bool = True
    expand_in_attention: bool = True
    rel_pos: bool = True
    residual_pool: bool = True
    residual_with_cls: bool = False  # the class token's row takes the residual-pooling add too (timm's image models)
    class_token: bool = True
    global_pool: GlobalPool = "token"
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    proj_drop_rate: float = 0.0  # after the attention projection and in the MLP (torchvision's attention_dropout)
    attn_drop_rate: float = 0.0  # on the attention probabilities (SDPA's dropout_p; torchvision has none)
    drop_path_rate: float = 0.0

    # ----------------------------------------------------------------------------------- derived
    @property
    def grid_thw(self) -> Triple:
        """Token grid ``(T', h, w)`` after the stem."""
        return stem_grid(self, self.num_frames, self.img_hw)

    def validate(self) -> None:
        BaseConfig.validate(self)
        n = len(self.depths)
        per_stage = {"widths": self.widths, "num_heads": self.num_heads, "q_strides": self.q_strides}
        per_stage["kv_strides"] = self.kv_strides
        wrong = {k: len(v) for k, v in per_stage.items() if len(v) != n}
        if n < 1 or wrong or min(self.depths) < 1:
            raise schema.ConfigError(
                f"depths={self.depths}: every stage needs >= 1 block, and widths, num_heads, q_strides, kv_strides "
                f"one entry per stage ({n}); got lengths {wrong}"
            )
        bad = [(w, h) for w, h in zip(self.widths, self.num_heads, strict=True) if h < 1 or w % h]
        if bad:
            raise schema.ConfigError(f"widths={self.widths} must be divisible by num_heads={self.num_heads}")
        sizes = (self.num_frames, *self.img_hw)
        if any(s < st or s % st for s, st in zip(sizes, self.patch_stride, strict=True)):
            raise schema.ConfigError(
                f"{self.num_frames} frames at {self.img_hw[0]}x{self.img_hw[1]} px are not positive multiples of "
                f"patch_stride={self.patch_stride}"
            )
        if self.global_pool == "token" and not self.class_token:
            raise schema.ConfigError("global_pool='token' needs class_token=True (or set global_pool='avg')")


def stem_grid(cfg: MViTConfig, frames: int, hw: tuple[int, int]) -> Triple:
    """Token grid the stem makes of ``frames`` frames of ``hw`` pixels (the ``Conv3d`` output size)."""
    sizes = (frames, *hw)
    return tuple(
        (n + 2 * p - k) // s + 1
        for n, k, s, p in zip(sizes, cfg.patch_kernel, cfg.patch_stride, cfg.patch_padding, strict=True)
    )


@dataclass(frozen=True)
class BlockSpec:
    """One block of the expanded layout (what torchvision's ``MSBlockConfig`` says, with its stage)."""

    stage: int
    dim: int
    dim_out: int
    attention_dim: int  # width of attention and of the MLP's input: dim_out when growing in attention, else dim
    num_heads: int
    kernel_q: Triple  # (1, 1, 1) with stride_q (1, 1, 1): no query pooling
    stride_q: Triple
    kernel_kv: Triple
    stride_kv: Triple


def block_specs(cfg: MViTConfig) -> list[BlockSpec]:
    """The per-block records of ``cfg``'s layout, in order (see the module docstring)."""
    specs, dim, last_stage = [], cfg.widths[0], cfg.num_stages - 1
    for s, depth in enumerate(cfg.depths):
        for i in range(depth):
            stride_q = cfg.q_strides[s] if i == 0 else ONES
            kernel_q = cfg.kernel_q if cfg.pool_q_every_block or pools(ONES, stride_q) else ONES
            if cfg.expand_in_attention:
                dim_out = cfg.widths[s]
            else:
                dim_out = cfg.widths[s + 1] if i == depth - 1 and s < last_stage else cfg.widths[s]
            specs.append(
                BlockSpec(
                    stage=s,
                    dim=dim,
                    dim_out=dim_out,
                    attention_dim=dim_out if cfg.expand_in_attention else dim,
                    num_heads=cfg.num_heads[s],
                    kernel_q=kernel_q,
                    stride_q=stride_q,
                    kernel_kv=cfg.kernel_kv,
                    stride_kv=cfg.kv_strides[s],
                )
            )
            dim = dim_out
    return specs


@dataclass(frozen=True)
class BlockGrid:
    """The grids one block sees for a given input: its input, its queries (= its output) and its keys."""

    input: Triple
    q: Triple
    kv: Triple


def block_grids(cfg: MViTConfig, grid: Triple) -> list[BlockGrid]:
    """Grids of every block for a stem grid ``grid`` (pooling output sizes, as the convolutions compute them)."""
    out = []
    for spec in block_specs(cfg):
        q = pool_output_size(grid, spec.kernel_q, spec.stride_q) if pools(spec.kernel_q, spec.stride_q) else grid
        kv = pool_output_size(grid, spec.kernel_kv, spec.stride_kv) if pools(spec.kernel_kv, spec.stride_kv) else grid
        out.append(BlockGrid(input=grid, q=q, kv=kv))
        grid = q
    return out


def rel_pos_lengths(cfg: MViTConfig, grid: Triple) -> list[tuple[int, int]]:
    """Per block, ``(spatial, temporal)`` relative-position table lengths for a stem grid ``grid``.

    torchvision's rule: the grid is walked down the blocks by integer division by the query strides (the
    pooled sizes themselves round up), and each block's tables cover its input grid (see
    :func:`vitzoo.layers.rel_pos.table_lengths`).
    """
    out = []
    for spec in block_specs(cfg):
        out.append(table_lengths(grid, spec.stride_q, spec.stride_kv))
        grid = tuple(n // s for n, s in zip(grid, spec.stride_q, strict=True))
    return out
