"""Window geometry of (shifted) window attention on a 3-D token grid, with torchvision's rules.

For a token grid ``(T, H, W)`` and a configured window ``(Wt, Wh, Ww)`` (Video Swin, Liu et al. 2022):

* an axis no longer than its window gets a window of its own length and no shift (the window is *clipped*);
* otherwise the window keeps its size, shifted blocks shift by ``window // 2``, and the grid is padded at the end
  with zero tokens up to a multiple of the window. Padded tokens take part in attention like any other (they are
  not masked: after the block's LayerNorm they are zero vectors, so their keys and values are the ``qkv`` bias),
  then they are cut off again; they never reach the MLP, a later block or the pooling;
* shifted blocks roll the padded grid by ``-shift`` and mask attention between tokens that the roll brought
  together from opposite ends (``-100`` added to their scores, as torchvision and the official code do).

vitzoo does not roll: the windows of the rolled grid are grouped by the mask they need (:func:`window_groups`:
the interior windows need none, only those wrapped around an end do), so each group runs one fused attention
with an ``(H, N, N)`` mask instead of one ``(nW, H, N, N)`` mask for the block. One gather
(:func:`group_gather`) takes the padded grid's tokens to the windows, group after group; its inverse puts the
results back in grid order.
:class:`WindowPlan` holds what one block needs for one grid (geometry, relative-position index, groups and their
masks); it is built once per grid and stage (see ``SwinStage``), never per block.
"""

from __future__ import annotations

import itertools
import math
import typing
from dataclasses import dataclass
from typing import Literal

import torch

Grid = tuple[int, int, int]  # (T, H, W) tokens
ClippedWindowBias = Literal["relative", "torchvision"]
CLIPPED_WINDOW_BIASES = typing.get_args(ClippedWindowBias)
MASKED = -100.0  # added to the scores of token pairs a cyclic shift brought together (torchvision's value)


@dataclass(frozen=True)
class WindowGeometry:
    """Window, shift and end padding of one block on one token grid."""

    grid: Grid
    window: Grid
    shift: Grid
    pad: Grid

    @property
    def padded(self) -> Grid:
        """The padded grid (a multiple of the window on every axis)."""
        return tuple(g + p for g, p in zip(self.grid, self.pad, strict=True))

    @property
    def window_tokens(self) -> int:
        """Tokens per window ``N``."""
        return math.prod(self.window)

    @property
    def num_windows(self) -> int:
        """Windows in the padded grid."""
        return math.prod(p // w for p, w in zip(self.padded, self.window, strict=True))

    @property
    def shifted(self) -> bool:
        """Whether the block rolls the grid (and masks)."""
        return any(self.shift)


def window_geometry(grid: Grid, window: Grid, *, shifted: bool) -> WindowGeometry:
    """torchvision's rule (``_get_window_and_shift_size`` + ``_compute_pad_size_3d``) for one block."""
    clipped = tuple(min(g, w) for g, w in zip(grid, window, strict=True))
    shift = tuple(w // 2 if shifted and g > w else 0 for g, w in zip(grid, window, strict=True))
    pad = tuple((w - g % w) % w for g, w in zip(grid, clipped, strict=True))
    return WindowGeometry(grid=tuple(grid), window=clipped, shift=shift, pad=pad)


def relative_position_index(window: Grid, table_window: Grid, *, clipped: str = "relative") -> torch.Tensor:
    """``(N, N)`` indices into a relative-position table built for ``table_window``, for tokens of ``window``.

    The table has ``(2 Wt - 1)(2 Wh - 1)(2 Ww - 1)`` rows, one per relative offset ``(dt, dh, dw)``. For a window
    clipped smaller than the table's, ``clipped`` says which entries are used:

    * ``"relative"``: each token pair's own offset (the geometry the table was trained for);
    * ``"torchvision"``: the first ``N x N`` entries of the full window's index, as torchvision's
      ``_get_relative_position_bias`` does. That is the same as ``"relative"`` when only the leading (time)
      axis is clipped, but not when a spatial axis is (small inputs): kept only to reproduce torchvision exactly.
    """
    if clipped not in CLIPPED_WINDOW_BIASES:
        raise ValueError(f"clipped={clipped!r}; expected one of {CLIPPED_WINDOW_BIASES}")
    if clipped == "torchvision" and tuple(window) != tuple(table_window):
        n = math.prod(window)
        return relative_position_index(table_window, table_window)[:n, :n]
    coords = torch.stack(torch.meshgrid(*(torch.arange(w) for w in window), indexing="ij")).flatten(1)  # (3, N)
    offsets = coords[:, :, None] - coords[:, None, :]  # (3, N, N)
    _, th, tw = (2 * w - 1 for w in table_window)
    shifted = [offsets[i] + table_window[i] - 1 for i in range(3)]
    return shifted[0] * th * tw + shifted[1] * tw + shifted[2]  # (N, N)


@dataclass(frozen=True)
class AxisPart:
    """Along one axis, a run of windows of the rolled grid that need the same mask, and where their tokens are.

    ``windows``: how many windows of the rolled axis the run holds.
    ``reads``: ``(start, length)`` slices of the padded (not rolled) axis, concatenated, holding the run's tokens
    in order (two slices for the window that a cyclic shift wraps around the end). ``labels``: per position in a
    window, the region of the rolled axis it lies in (torchvision's three slices; 0 everywhere without a wrap).
    """

    windows: int
    reads: tuple[tuple[int, int], ...]
    labels: tuple[int, ...]


def axis_parts(size: int, window: int, shift: int) -> tuple[AxisPart, ...]:
    """The parts of one padded axis: all its windows, or (shifted) the interior ones and the wrapped-around one.

    Rolling by ``-shift`` and cutting windows of the rolled axis (torchvision) is the same as taking windows from
    ``shift`` on (the interior ones) plus one window of the last ``window - shift`` and first ``shift`` positions;
    only that last one mixes tokens from both ends, labelled 1 and 2 (torchvision's regions).
    """
    n = size // window
    if shift == 0:
        return (AxisPart(n, ((0, size),), (0,) * window),)
    tail = window - shift
    interior = AxisPart(n - 1, ((shift, (n - 1) * window),), (0,) * window)
    wrapped = AxisPart(1, ((size - tail, tail), (0, shift)), (1,) * tail + (2,) * shift)
    return interior, wrapped


@dataclass(frozen=True)
class WindowGroup:
    """Windows that share one attention mask: a part per axis, and the shift mask ``(N, N)`` (None: no mask)."""

    parts: tuple[AxisPart, AxisPart, AxisPart]
    mask: torch.Tensor | None

    @property
    def windows(self) -> tuple[int, int, int]:
        """Windows of the group along each axis."""
        return tuple(p.windows for p in self.parts)


def group_mask(parts: tuple[AxisPart, AxisPart, AxisPart]) -> torch.Tensor | None:
    """``(N, N)``: :data:`MASKED` between tokens of a window that came from different regions; None if all one."""
    if not any(any(p.labels) for p in parts):  # plain Python: plans are also built while a model is traced
        return None
    label = torch.tensor([9 * t + 3 * h + w for t, h, w in itertools.product(*(p.labels for p in parts))])  # (N,)
    return (label[:, None] != label[None, :]).float() * MASKED


def window_groups(geometry: WindowGeometry) -> tuple[WindowGroup, ...]:
    """The windows of a block, grouped by attention mask (one group without shift; up to 8 with shifts)."""
    per_axis = [axis_parts(p, w, s) for p, w, s in zip(geometry.padded, geometry.window, geometry.shift, strict=True)]
    groups = []
    for parts in itertools.product(*per_axis):
        if all(p.windows > 0 for p in parts):
            groups.append(WindowGroup(parts, group_mask(parts)))
    return tuple(groups)


def group_gather(geometry: WindowGeometry, groups: tuple[WindowGroup, ...]) -> torch.Tensor:
    """``(Tp*Hp*Wp,)``: the padded grid's tokens (row-major indices) in the *group-major window layout*: group
    after group, each group's windows of the rolled grid in ``(nt, nh, nw)`` order, each window's tokens in
    ``(wt, wh, ww)`` order. One gather with it partitions, shifts and groups the grid; its inverse undoes all three.
    """
    _, hp, wp = geometry.padded
    wt, wh, ww = geometry.window
    gathers = []
    for group in groups:
        t, h, w = (torch.cat([torch.arange(start, start + length) for start, length in p.reads]) for p in group.parts)
        index = (t[:, None, None] * hp + h[None, :, None]) * wp + w[None, None, :]  # (nt*wt, nh*wh, nw*ww)
        nt, nh, nw = group.windows
        index = index.view(nt, wt, nh, wh, nw, ww).permute(0, 2, 4, 1, 3, 5)  # (nt, nh, nw, wt, wh, ww)
        gathers.append(index.flatten())
    return torch.cat(gathers)


@dataclass(frozen=True)
class WindowPlan:
    """What a block needs for one grid: geometry, relative-position index ``(N, N)``, window groups, and the two
    permutations between the padded grid and the group-major window layout (``gather``: into it, ``order``: back).
    """

    geometry: WindowGeometry
    index: torch.Tensor
    groups: tuple[WindowGroup, ...]
    gather: torch.Tensor
    order: torch.Tensor

    @property
    def group_tokens(self) -> list[int]:
        """Tokens of each group in the group-major window layout (its windows times the window's tokens)."""
        return [math.prod(g.windows) * self.geometry.window_tokens for g in self.groups]


def window_plan(
    grid: Grid, window: Grid, *, shifted: bool, clipped: str, device: torch.device | None = None
) -> WindowPlan:
    """The :class:`WindowPlan` of a block (shifted or not) with configured ``window`` on ``grid``."""
    geometry = window_geometry(grid, window, shifted=shifted)
    index = relative_position_index(geometry.window, window, clipped=clipped).to(device)
    groups = window_groups(geometry)
    gather = group_gather(geometry, groups)
    order = torch.empty_like(gather)
    order[gather] = torch.arange(gather.numel())  # the inverse permutation
    groups = tuple(WindowGroup(g.parts, g.mask.to(device) if g.mask is not None else None) for g in groups)
    return WindowPlan(geometry, index, groups, gather.to(device), order.to(device))
