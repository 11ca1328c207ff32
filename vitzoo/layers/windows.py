"""Window geometry of (shifted) window attention on a 3-D token grid, with torchvision's rules.

For a token grid ``(T, H, W)`` and a configured window ``(Wt, Wh, Ww)`` (Video Swin, Liu et al. 2022):

* an axis no longer than its window gets a window of its own length and no shift (the window is *clipped*);
* otherwise the window keeps its size, shifted blocks shift by ``window // 2``, and the grid is padded at the end
  with zero tokens up to a multiple of the window. Padded tokens take part in attention like any other (they are
  not masked: after the block's LayerNorm they are zero vectors, so their keys and values are the ``qkv`` bias),
  then they are cut off again; they never reach the MLP, a later block or the pooling;
* shifted blocks roll the padded grid by ``-shift`` and mask attention between tokens that the roll brought
  together from opposite ends (``-100`` added to their scores, as torchvision and the official code do).

:class:`WindowPlan` holds what one block needs for one grid (geometry, relative-position index, shift mask); it is
built once per grid and stage (see ``SwinStage``), never per block.
"""

from __future__ import annotations

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


def _regions(size: int, window: int, shift: int) -> torch.Tensor:
    """Per position along one rolled axis: 0, 1 or 2, the three slices torchvision labels (one label if no shift)."""
    idx = torch.arange(size)
    if shift == 0:
        return torch.zeros(size, dtype=torch.long)
    return (idx >= size - window).long() + (idx >= size - shift).long()


def shift_mask(geometry: WindowGeometry) -> torch.Tensor | None:
    """``(nW, N, N)`` float mask of a shifted block (0 within a region, :data:`MASKED` across), or None."""
    if not geometry.shifted:
        return None
    (pt, ph, pw), (wt, wh, ww) = geometry.padded, geometry.window
    rt, rh, rw = (_regions(p, w, s) for p, w, s in zip(geometry.padded, geometry.window, geometry.shift, strict=True))
    label = rt[:, None, None] * 9 + rh[None, :, None] * 3 + rw[None, None, :]  # (Tp, Hp, Wp)
    windows = label.view(pt // wt, wt, ph // wh, wh, pw // ww, ww).permute(0, 2, 4, 1, 3, 5).reshape(-1, wt * wh * ww)
    different = windows[:, :, None] != windows[:, None, :]  # (nW, N, N)
    return different.float() * MASKED


@dataclass(frozen=True)
class WindowPlan:
    """Everything a block needs for one grid: geometry, relative-position index ``(N, N)``, shift mask or None."""

    geometry: WindowGeometry
    index: torch.Tensor
    mask: torch.Tensor | None


def window_plan(
    grid: Grid, window: Grid, *, shifted: bool, clipped: str, device: torch.device | None = None
) -> WindowPlan:
    """The :class:`WindowPlan` of a block (shifted or not) with configured ``window`` on ``grid``."""
    geometry = window_geometry(grid, window, shifted=shifted)
    index = relative_position_index(geometry.window, window, clipped=clipped).to(device)
    mask = shift_mask(geometry)
    return WindowPlan(geometry, index, mask.to(device) if mask is not None else None)
