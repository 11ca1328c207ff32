"""Mask generators for masked autoencoding: which tokens of a clip's (or image's) token grid are hidden.

Each generator is a small dataclass called with a ``torch.Generator`` and returning a ``(L,)`` bool mask over the
token grid flattened ``(t h w)`` (``(h w)`` for an image grid), ``True`` = masked: transformers'
``bool_masked_pos`` convention. Every mask a generator draws hides the same number of tokens, so a batch of them
can drop tokens with one gather (the encoder's ``forward_visible``).

* :class:`TubeMask` (VideoMAE, Tong et al. 2022): the same spatial positions are masked in every time slice, so a
  moving object cannot be copied from a neighbouring frame. ``int(ratio * h * w)`` positions per slice.
* :class:`RandomMask` (MAE-ST, Feichtenhofer et al. 2022; MAE on images): any ``int(ratio * L)`` tokens.
* :class:`RunningCellMask` (VideoMAE V2, Wang et al. 2023, its decoder mask): each 2x2 cell of a slice hides
  ``int(4 * ratio)`` of its 4 positions, in a pattern that shifts by one position each time slice.

The counts follow VideoMAE's ``int(ratio * n)`` rule (truncation, not rounding). Reproducibility with any number of
loader workers: draw each sample's mask from :func:`sample_generator` ``(seed, index, epoch)``, which depends on
nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vitzoo.schema import did_you_mean

Grid = tuple[int, ...]  # (t, h, w) tokens of a clip, or (h, w) of an image


def _grid(grid: Grid) -> tuple[int, int, int]:
    """``(t, h, w)`` of a video grid, ``(1, h, w)`` of an image grid; one-line error for anything else."""
    grid = tuple(int(g) for g in grid)
    if len(grid) not in (2, 3) or min(grid) < 1:
        raise ValueError(f"mask grid={grid}: expected (t, h, w) or (h, w) token counts, each >= 1")
    return grid if len(grid) == 3 else (1, *grid)


def _check_ratio(ratio: float) -> None:
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio={ratio}: expected a fraction in [0, 1)")


def _first_k(n: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """``(n,)`` bool with ``k`` True entries at uniformly random positions."""
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.randperm(n, generator=generator)[:k]] = True
    return mask


@dataclass(frozen=True)
class _FractionMask:
    """A mask hiding a fraction ``ratio`` of the tokens of ``grid`` (both checked when it is built)."""

    grid: Grid
    ratio: float = 0.9

    def __post_init__(self) -> None:
        _grid(self.grid)
        _check_ratio(self.ratio)


@dataclass(frozen=True)
class TubeMask(_FractionMask):
    """VideoMAE's tube masking: ``int(ratio * h * w)`` spatial positions, masked in every time slice."""

    @property
    def num_masked(self) -> int:
        """Masked tokens per sample."""
        t, h, w = _grid(self.grid)
        return t * int(self.ratio * h * w)

    def __call__(self, generator: torch.Generator) -> torch.Tensor:
        t, h, w = _grid(self.grid)
        per_slice = _first_k(h * w, int(self.ratio * h * w), generator)  # (h*w,)
        return per_slice.repeat(t)  # (t*h*w,): the same positions in every slice


@dataclass(frozen=True)
class RandomMask(_FractionMask):
    """Random space-time masking (MAE-ST; MAE's for an image grid): any ``int(ratio * L)`` of the ``L`` tokens."""

    @property
    def num_masked(self) -> int:
        """Masked tokens per sample."""
        t, h, w = _grid(self.grid)
        return int(self.ratio * t * h * w)

    def __call__(self, generator: torch.Generator) -> torch.Tensor:
        t, h, w = _grid(self.grid)
        return _first_k(t * h * w, self.num_masked, generator)


@dataclass(frozen=True)
class RunningCellMask:
    """VideoMAE V2's running-cell mask (its decoder mask): every 2x2 cell hides ``int(4 * ratio)`` positions.

    The cell's four positions (row-major) hold ``int(4 * ratio)`` masked then the rest visible, read from a start
    offset that advances by one each time slice; the start offset of the first slice is drawn (4 possible masks).
    Needs even ``h`` and ``w`` and ``int(4 * ratio)`` in 1..3.
    """

    grid: Grid
    ratio: float = 0.5

    def __post_init__(self) -> None:
        _, h, w = _grid(self.grid)
        if h % 2 or w % 2:
            raise ValueError(f"running-cell mask on grid {tuple(self.grid)}: h and w must be even (2x2 cells)")
        if not 1 <= int(4 * self.ratio) <= 3:
            raise ValueError(f"running-cell mask ratio={self.ratio}: int(4 * ratio) must be 1, 2 or 3")

    @property
    def num_masked(self) -> int:
        """Masked tokens per sample."""
        t, h, w = _grid(self.grid)
        return t * h * w * int(4 * self.ratio) // 4

    def __call__(self, generator: torch.Generator) -> torch.Tensor:
        t, h, w = _grid(self.grid)
        queue = torch.arange(4) < int(4 * self.ratio)  # (4,): masked first
        start = int(torch.randint(4, (1,), generator=generator))
        offsets = (torch.arange(t)[:, None] + 1 + start + torch.arange(4)[None]) % 4  # (t, 4): VideoMAE V2's order
        cells = queue[offsets].reshape(t, 1, 2, 1, 2)  # (t, 1, 2, 1, 2): one 2x2 cell per slice
        return cells.expand(t, h // 2, 2, w // 2, 2).reshape(-1)  # (t*h*w,): the cell tiled over the slice


MaskGenerator = TubeMask | RandomMask | RunningCellMask
MASK_KINDS: dict[str, type] = {"tube": TubeMask, "random": RandomMask, "running_cell": RunningCellMask}


def make_mask_generator(kind: str, *, grid: Grid, ratio: float) -> MaskGenerator:
    """The generator named ``kind`` (``tube``, ``random``, ``running_cell``) on a token ``grid``."""
    cls = MASK_KINDS.get(kind)
    if cls is None:
        raise ValueError(f"mask kind {kind!r} is not known{did_you_mean(kind, MASK_KINDS)}")
    return cls(grid=tuple(grid), ratio=ratio)


def sample_generator(seed: int, index: int, epoch: int = 0) -> torch.Generator:
    """A ``torch.Generator`` seeded from ``(seed, epoch, index)`` only (numpy's ``SeedSequence`` mixes them), so a
    sample's mask is the same whichever loader worker draws it and however many there are."""
    state = np.random.SeedSequence([int(seed) % 2**63, int(epoch), int(index)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def draw_masks(mask: MaskGenerator, indices: list[int] | torch.Tensor, *, seed: int, epoch: int = 0) -> torch.Tensor:
    """``(B, L)`` masks for the samples ``indices``, each from :func:`sample_generator` (a helper for tests and
    tasks that draw masks in the main process)."""
    return torch.stack([mask(sample_generator(seed, int(i), epoch)) for i in indices])


__all__ = [
    "MASK_KINDS",
    "MaskGenerator",
    "RandomMask",
    "RunningCellMask",
    "TubeMask",
    "draw_masks",
    "make_mask_generator",
    "sample_generator",
]
