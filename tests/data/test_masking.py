"""Mask generators: counts per sample, tube structure, VideoMAE V2's running cell, reproducibility across workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from vitzoo.data.masking import (
    RandomMask,
    RunningCellMask,
    TubeMask,
    draw_masks,
    make_mask_generator,
    sample_generator,
)

GRID = (4, 6, 6)


@pytest.mark.parametrize("ratio", [0.0, 0.5, 0.75, 0.9, 0.95])
@pytest.mark.parametrize("kind", ["tube", "random"])
def test_every_sample_masks_videomaes_count(kind, ratio):
    gen = make_mask_generator(kind, grid=GRID, ratio=ratio)
    masks = draw_masks(gen, range(16), seed=3)
    t, h, w = GRID
    expected = t * int(ratio * h * w) if kind == "tube" else int(ratio * t * h * w)  # VideoMAE's int() rule
    assert masks.shape == (16, t * h * w) and masks.dtype == torch.bool
    assert masks.sum(1).tolist() == [expected] * 16 == [gen.num_masked] * 16


def test_tube_mask_hides_the_same_positions_in_every_slice_and_random_does_not():
    tube = draw_masks(TubeMask(GRID, 0.75), range(8), seed=0).reshape(8, GRID[0], -1)  # (B, t, h*w)
    assert torch.equal(tube, tube[:, :1].expand_as(tube))
    rand = draw_masks(RandomMask(GRID, 0.75), range(8), seed=0).reshape(8, GRID[0], -1)
    assert not torch.equal(rand, rand[:, :1].expand_as(rand))
    assert len({tuple(m.flatten().tolist()) for m in tube}) == 8  # samples differ


def test_image_grid_masks():
    masks = draw_masks(RandomMask((4, 4), 0.75), range(3), seed=0)
    assert masks.shape == (3, 16) and masks.sum(1).tolist() == [12] * 3


def _videomae_v2_running_cell(grid, ratio, start):
    """VideoMAE V2's ``RunningCellMaskingGenerator`` (its masks_list[start]), written from its code with numpy."""
    frames, height, width = grid
    num_masks = int(4 * ratio)
    queue = np.hstack([np.ones(num_masks), np.zeros(4 - num_masks)])
    ptr, maps = start, []
    for _ in range(frames):
        ptr += 1
        unit = queue[(np.arange(4) + ptr) % 4].reshape(2, 2)
        maps.append(np.tile(unit, [height // 2, width // 2]).flatten())
    return np.stack(maps).flatten().astype(bool)


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_running_cell_equals_videomae_v2(ratio):
    gen = RunningCellMask(GRID, ratio)
    references = {tuple(_videomae_v2_running_cell(GRID, ratio, s)) for s in range(4)}
    drawn = {tuple(m.tolist()) for m in draw_masks(gen, range(40), seed=0)}
    assert drawn == references  # every drawn mask is one of V2's four, and all four occur
    assert gen.num_masked == int(4 * ratio) * np.prod(GRID) // 4


def test_bad_kinds_ratios_and_grids_say_what_to_change():
    with pytest.raises(ValueError, match="did you mean tube"):
        make_mask_generator("tubes", grid=GRID, ratio=0.9)
    with pytest.raises(ValueError, match=r"ratio=1.0: expected a fraction in \[0, 1\)"):
        TubeMask(GRID, 1.0)
    with pytest.raises(ValueError, match="h and w must be even"):
        RunningCellMask((2, 5, 6), 0.5)
    with pytest.raises(ValueError, match="int\\(4 \\* ratio\\) must be 1, 2 or 3"):
        RunningCellMask(GRID, 0.2)


class _Masks(Dataset):
    def __init__(self, seed: int, epoch: int) -> None:
        self.gen, self.seed, self.epoch = TubeMask(GRID, 0.9), seed, epoch

    def __len__(self) -> int:
        return 12

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.gen(sample_generator(self.seed, index, self.epoch))


def _loaded(num_workers: int, seed: int = 0, epoch: int = 0) -> torch.Tensor:
    loader = DataLoader(_Masks(seed, epoch), batch_size=4, num_workers=num_workers)
    return torch.cat(list(loader))


def test_masks_depend_on_seed_epoch_and_index_only_not_on_workers():
    single = _loaded(0)
    assert torch.equal(single, _loaded(2))
    assert not torch.equal(single, _loaded(0, seed=1)) and not torch.equal(single, _loaded(0, epoch=1))
    assert len({tuple(m.tolist()) for m in single}) == len(single)  # each index its own mask
