"""The training DataLoader: ``vitzoo.data.make_loader``'s, plus the ability to resume in the middle of an epoch.

``make_loader`` yields the same batches for a given ``(seed, epoch)`` (shuffling by a ``DistributedSampler``
and per-sample seeds, see :mod:`vitzoo.data.loader`). To continue an epoch after ``k`` batches without
decoding those ``k`` batches again, :class:`ResumableSampler` wraps its sampler and drops the first items
of one pass; the index/seed pairs that follow are exactly those of the uninterrupted pass.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from vitzoo.data.loader import make_loader


class ResumableSampler(Sampler):
    """Forward an epoch-aware sampler; :meth:`skip_next` drops the first ``n`` items of the next pass only."""

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        """Epoch of the next pass (forwarded)."""
        self.sampler.set_epoch(epoch)

    def skip_next(self, num_items: int) -> None:
        """Leave out the first ``num_items`` items of the next pass (resuming mid-epoch)."""
        if num_items < 0:
            raise ValueError(f"cannot skip {num_items} items")
        self._skip = num_items

    def __iter__(self) -> Iterator:
        skip, self._skip = self._skip, 0
        return itertools.islice(iter(self.sampler), skip, None)

    def __len__(self) -> int:
        return max(len(self.sampler) - self._skip, 0)


def with_sampler(loader: DataLoader, sampler: Sampler) -> DataLoader:
    """A DataLoader with every setting of ``loader`` (workers, seeds, collate, generator) but another sampler."""
    options = dict(
        batch_size=loader.batch_size,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        generator=loader.generator,
        persistent_workers=loader.persistent_workers,
    )
    if loader.num_workers > 0:
        options.update(multiprocessing_context=loader.multiprocessing_context, prefetch_factor=loader.prefetch_factor)
    return DataLoader(loader.dataset, sampler=sampler, **options)


def train_loader(
    dataset: Dataset, *, batch_size: int, num_workers: int, seed: int, distributed: bool
) -> tuple[DataLoader, ResumableSampler]:
    """Shuffled, ``drop_last`` training loader (``make_loader``) whose sampler can skip ahead; ``(loader, sampler)``."""
    base = make_loader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        shuffle=True,
        distributed=distributed,
        seed=seed,
        drop_last=True,
    )
    if base.generator is None:  # the generator's state is checkpointed; make sure there is one
        base.generator = torch.Generator().manual_seed(seed)
    sampler = ResumableSampler(base.sampler)
    return with_sampler(base, sampler), sampler
