"""MViTv2's decomposed relative position embeddings (Li et al., 2022, Sec. 3.2).

The bias between query ``i`` at ``(t_i, h_i, w_i)`` and key ``j`` at ``(t_j, h_j, w_j)`` is

    ``q_i . R_t[t_i - t_j] + q_i . R_h[h_i - h_j] + q_i . R_w[w_i - w_j]``

with one learned table per axis (``rel_pos_t``, ``rel_pos_h``, ``rel_pos_w``, each ``(2 * size - 1, head_dim)``,
shared by the heads). Queries and keys may live on grids of different resolution (pooled differently): the
distances are then measured on the finer grid (``q_ratio`` / ``k_ratio`` below, as in SlowFast and
torchvision). Prefix (class) tokens get no bias. The bias is a float ``attn_mask`` for
``scaled_dot_product_attention``, added to the scaled scores.

A table whose length is not the ``2 * max(q, k) - 1`` an axis needs is linearly interpolated at run time
(torchvision does the same; it happens for non-square frames, whose tables are sized by the longer side).
The integer distance tables depend only on the two grids: :class:`RelPosIndex` builds them once per
(query grid, key grid, device) and every block of every later forward reuses them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

Grid = tuple[int, int, int]  # (T, h, w)


def table_lengths(grid: Grid, stride_q: Grid, stride_kv: Grid) -> tuple[int, int]:
    """``(spatial, temporal)`` table lengths of a block whose input grid is ``grid`` (torchvision's rule).

    The spatial tables cover the longer side of the frame: ``2 * max(q, kv) - 1`` with ``q``, ``kv`` that side
    divided by the query and key strides of the height axis; the temporal one ``2 * T - 1``.
    """
    size = max(grid[1:])
    q_size, kv_size = size // stride_q[1], size // stride_kv[1]
    return 2 * max(q_size, kv_size) - 1, 2 * grid[0] - 1


def resize_table(table: torch.Tensor, length: int) -> torch.Tensor:
    """A ``(L, d)`` table linearly interpolated to ``(length, d)`` (unchanged when the length fits).

    While tracing with symbolic sizes the interpolation is always in the graph (to the same length it is exactly
    the identity), so that the graph does not branch on the input size.
    """
    if table.shape[0] == length and not _tracing():
        return table
    out = F.interpolate(rearrange(table, "l d -> 1 d l"), size=length, mode="linear")  # (1, d, length)
    return rearrange(out, "1 d l -> l d")


def relative_distance(q_size: int, k_size: int) -> torch.Tensor:
    """``(q_size, k_size)`` table indices: the distance of every query to every key, shifted to be >= 0.

    Positions on the coarser grid are scaled by the size ratio (in float32, truncated, as torchvision does); the
    ratios are tensors so that symbolic sizes (dynamic-size export) stay in the graph.
    """
    q = torch.arange(q_size, dtype=torch.float32)
    k = torch.arange(k_size, dtype=torch.float32)
    q_len, k_len = q.new_full((), q_size), k.new_full((), k_size)
    q_ratio = torch.clamp(k_len / q_len, min=1.0)
    k_ratio = torch.clamp(q_len / k_len, min=1.0)
    dist = q[:, None] * q_ratio - (k[None, :] + (1.0 - k_len)) * k_ratio
    return dist.long()


def _tracing() -> bool:
    """Whether a graph is being traced (compile, export, ONNX): tensors made then are not real ones, and the
    graph should see plain functional ops."""
    return torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing()


class RelPosIndex:
    """The ``(t, h, w)`` distance tables of a (query grid, key grid) pair on a device, built once and reused.

    One instance is shared by every attention layer of a model (it is plain state, not part of the weights).
    """

    def __init__(self) -> None:
        self._tables: dict[tuple, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def __call__(
        self, q_grid: Grid, k_grid: Grid, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if _tracing():  # sizes may be symbolic: build the tables in the graph, keep nothing
            return tuple(relative_distance(q, k).to(device) for q, k in zip(q_grid, k_grid, strict=True))
        key = (tuple(q_grid), tuple(k_grid), device)
        found = self._tables.get(key)
        if found is None:
            found = tuple(relative_distance(q, k).to(device) for q, k in zip(q_grid, k_grid, strict=True))
            self._tables[key] = found
        return found

    def __len__(self) -> int:
        return len(self._tables)


def rel_pos_bias(
    q: torch.Tensor,
    q_grid: Grid,
    k_grid: Grid,
    tables: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    index: RelPosIndex,
    num_prefix_tokens: int,
) -> torch.Tensor:
    """The bias ``(B, H, P + Lq, P + Lk)`` of queries ``q (B, H, P + Lq, d)`` on ``q_grid`` to keys on ``k_grid``.

    ``tables`` are ``(rel_pos_t, rel_pos_h, rel_pos_w)``. Prefix rows and columns are zero.
    """
    p = num_prefix_tokens
    (qt, qh, qw), (kt, kh, kw) = q_grid, k_grid
    idx_t, idx_h, idx_w = index(q_grid, k_grid, q.device)
    table_t, table_h, table_w = tables
    r_t = resize_table(table_t, 2 * max(qt, kt) - 1)[idx_t]  # (qt, kt, d)
    r_h = resize_table(table_h, 2 * max(qh, kh) - 1)[idx_h]  # (qh, kh, d)
    r_w = resize_table(table_w, 2 * max(qw, kw) - 1)[idx_w]  # (qw, kw, d)
    r_q = rearrange(q[:, :, p:], "b y (t h w) d -> b y t h w d", t=qt, h=qh, w=qw)
    # one batched product per axis: each query row meets the table rows of its own distances
    rel_t = torch.einsum("bythwd,tkd->bythwk", r_q, r_t)  # (B, H, qt, qh, qw, kt)
    rel_h = torch.einsum("bythwd,hkd->bythwk", r_q, r_h)  # (B, H, qt, qh, qw, kh)
    rel_w = torch.einsum("bythwd,wkd->bythwk", r_q, r_w)  # (B, H, qt, qh, qw, kw)
    partial = rel_t[..., :, None, None] + rel_h[..., None, :, None]  # (B, H, qt, qh, qw, kt, kh, 1)
    across = rel_w[..., None, None, :]  # (B, H, qt, qh, qw, 1, 1, kw)
    if p and not torch.is_grad_enabled() and not _tracing():
        # inference: the sum is written once, straight into the zero-bordered mask (no full-size temporary)
        mask = partial.new_zeros(q.shape[0], q.shape[1], p + qt * qh * qw, p + kt * kh * kw)
        torch.add(partial, across, out=mask[:, :, p:, p:].unflatten(2, q_grid).unflatten(-1, k_grid))
        return mask  # (B, H, P + Lq, P + Lk)
    bias = rearrange(partial + across, "b y t h w i j k -> b y (t h w) (i j k)")  # (B, H, Lq, Lk)
    return F.pad(bias, (p, 0, p, 0)) if p else bias  # (B, H, P + Lq, P + Lk)
