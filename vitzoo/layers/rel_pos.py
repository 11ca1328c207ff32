"""MViTv2's decomposed relative position embeddings (Li et al., 2022, Sec. 3.2).

The bias between query ``i`` at ``(t_i, h_i, w_i)`` and key ``j`` at ``(t_j, h_j, w_j)`` is

    ``q_i . R_t[t_i - t_j] + q_i . R_h[h_i - h_j] + q_i . R_w[w_i - w_j]``

with one learned table per axis (``rel_pos_t``, ``rel_pos_h``, ``rel_pos_w``, each ``(2 * size - 1, head_dim)``,
shared by the heads). Queries and keys may live on grids of different resolution (pooled differently): the
distances are then measured on the finer grid (``q_ratio`` / ``k_ratio`` below, as in SlowFast and
torchvision). Prefix (class) tokens get no bias.

The bias is never written out as an ``(Lq, Lk)`` mask: per query, the three axis terms (``kt + kh + kw`` numbers)
are appended to the query, each key's one-hot ``(t, h, w)`` coordinates to the key, so the dot product of the two
extended vectors is the scaled score plus the bias (:func:`augment_with_rel_pos`). Measured on MViTv2-S (README):
building the mask and reading it in the fused kernel cost more than the 23% longer dot products, and a mask that
needs a gradient sent training to SDPA's math path.

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
    if not _tracing() and table.shape[0] == length:  # in this order: comparing a symbolic length adds a guard
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
    """The ``(t, h, w)`` distance tables of a (query grid, key grid) pair on a device, and the keys' one-hot
    coordinates (:func:`key_coordinates`) of a key grid, each built once and reused.

    One instance is shared by every attention layer of a model (it is plain state, not part of the weights).
    """

    def __init__(self) -> None:
        self._tables: dict[tuple, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self._coordinates: dict[tuple, torch.Tensor] = {}

    def coordinates(self, k_grid: Grid, num_prefix_tokens: int, dtype: torch.dtype, device: torch.device):
        """:func:`key_coordinates`, cached per (grid, prefix, dtype, device); built in the graph while tracing."""
        if _tracing():
            return key_coordinates(k_grid, num_prefix_tokens, dtype=dtype, device=device)
        key = (tuple(k_grid), num_prefix_tokens, dtype, device)
        if key not in self._coordinates:
            self._coordinates[key] = key_coordinates(k_grid, num_prefix_tokens, dtype=dtype, device=device)
        return self._coordinates[key]

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


def rel_pos_terms(
    q: torch.Tensor,
    q_grid: Grid,
    k_grid: Grid,
    tables: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    index: RelPosIndex,
    num_prefix_tokens: int,
) -> torch.Tensor:
    """Per query, its three axis terms ``(B, H, P + Lq, kt + kh + kw)``: ``q_i . R_t[t_i - t]`` for every key
    time ``t``, then every key row ``h``, then every key column ``w``. Prefix rows are zero.

    The bias of query ``i`` to key ``j`` at ``(t_j, h_j, w_j)`` is the sum of three of them: the terms times the
    keys' one-hot coordinates (:func:`key_coordinates`), which is how attention consumes them (see
    :func:`augment_with_rel_pos`) without a ``(Lq, Lk)`` bias ever being written.
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
    terms = rearrange(torch.cat([rel_t, rel_h, rel_w], dim=-1), "b y t h w k -> b y (t h w) k")
    return F.pad(terms, (0, 0, p, 0)) if p else terms  # (B, H, P + Lq, kt + kh + kw)


def key_coordinates(
    k_grid: Grid, num_prefix_tokens: int, *, dtype: torch.dtype, device: torch.device | None = None
) -> torch.Tensor:
    """``(P + Lk, kt + kh + kw)``: each key's one-hot time, row and column (zero for prefix keys)."""
    axes = torch.meshgrid(*(torch.arange(n, device=device) for n in k_grid), indexing="ij")  # 3 x (kt, kh, kw)
    hot = [a.flatten()[:, None] == torch.arange(n, device=device) for a, n in zip(axes, k_grid, strict=True)]
    coords = torch.cat(hot, dim=-1).to(dtype)  # (Lk, kt + kh + kw): one-hot time, row, column
    return F.pad(coords, (0, 0, num_prefix_tokens, 0)) if num_prefix_tokens else coords


def augment_with_rel_pos(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    q_grid: Grid,
    k_grid: Grid,
    tables: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    index: RelPosIndex,
    num_prefix_tokens: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``q, k, v (B, H, N, d)`` -> the same with ``kt + kh + kw`` more channels, for SDPA at ``scale=1``:

    ``[q / sqrt(d), terms] . [k, coordinates] = q . k / sqrt(d) + bias``, so attention adds the relative-position
    bias inside its dot products; values get zero channels (fused kernels want one head size), which the caller
    cuts off the output (``out[..., :d]``). No ``(Lq, Lk)`` mask is built, and with no mask the fused kernels also
    run the backward pass (a float mask that needs a gradient sends SDPA to its math path).
    """
    terms = rel_pos_terms(q, q_grid, k_grid, tables, index, num_prefix_tokens)  # (B, H, P + Lq, c)
    coords = index.coordinates(k_grid, num_prefix_tokens, k.dtype, k.device)  # (P + Lk, c)
    extra = coords.shape[-1]
    q = torch.cat([q * q.shape[-1] ** -0.5, terms.to(q.dtype)], dim=-1)  # (B, H, P + Lq, d + c)
    k = torch.cat([k, coords.expand(*k.shape[:-1], extra)], dim=-1)  # (B, H, P + Lk, d + c)
    return q, k, F.pad(v, (0, extra))
