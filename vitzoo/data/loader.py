"""``make_loader``: a DataLoader whose sampling and augmentation are reproducible and fork-safe.

Reproducibility. Indices come from a ``DistributedSampler`` (also when not distributed, with one
replica), which shuffles with ``seed + epoch``. :class:`SeededSampler` wraps it, advances the epoch by
itself on every pass (``set_epoch`` overrides it, e.g. when resuming), and pairs each index with a
seed derived from ``(seed, rank, epoch)``. Datasets that accept ``(index, seed)`` keys
(``supports_sample_seeds``) draw frame positions and transform parameters from that seed only, so a
batch is the same whatever ``num_workers`` is and whichever worker builds it. ``worker_init_fn``
also seeds Python's and numpy's global RNGs in each worker for third-party code.

Worker start method. The default is ``"fork"`` (where the platform has it): workers start in
milliseconds instead of re-importing torch, and it is safe here because (1) the datasets open and
close decoders inside ``__getitem__``, so none exists at fork time, and (2) a ``VideoReader`` that was
open in the parent never uses or frees its inherited decoder in a child (see
:mod:`vitzoo.data.video`); an inherited decord handle is exactly what deadlocks. Pass
``multiprocessing_context="spawn"`` or ``"forkserver"`` when the parent holds other fork-unsafe state
(CUDA initialised before the loader is built, raw ``decord.VideoReader`` objects, threads holding
locks). Workers are persistent, so that choice costs start-up time once, not every epoch.
"""

from __future__ import annotations

import logging
import multiprocessing
import random
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from vitzoo.data.errors import DataConfigError

logger = logging.getLogger(__name__)


class SeededSampler(Sampler):
    """Yield ``(index, seed)`` pairs (or plain indices) from an epoch-aware index sampler.

    Args:
        sampler: yields dataset indices; if it has ``set_epoch`` it is told the epoch of each pass.
        seed: base seed.
        rank: distributed rank (different ranks get different per-sample seeds).
        with_seeds: yield ``(index, seed)`` pairs; False yields the indices unchanged.

    Each ``iter()`` uses the current epoch and then advances it by one; :meth:`set_epoch` sets the
    epoch of the next pass.
    """

    def __init__(self, sampler: Sampler, *, seed: int, rank: int = 0, with_seeds: bool = True) -> None:
        self.sampler = sampler
        self.seed = seed
        self.rank = rank
        self.with_seeds = with_seeds
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Epoch of the next pass (shuffling order and per-sample seeds depend on it)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator:
        epoch, self.epoch = self.epoch, self.epoch + 1
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
        if not self.with_seeds:
            yield from self.sampler
            return
        rng = np.random.default_rng([self.seed, self.rank, epoch])
        for index in self.sampler:
            yield int(index), int(rng.integers(0, 2**63 - 1))

    def __len__(self) -> int:
        return len(self.sampler)


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed ``random`` and numpy from the worker's torch seed (base seed + id)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def default_multiprocessing_context() -> str:
    """``"fork"`` where available (see the module docstring for why it is safe), else ``"spawn"``."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def _check_loader_options(*, batch_size, num_workers, prefetch_factor, timeout) -> None:
    for name, value, low in (("batch_size", batch_size, 1), ("num_workers", num_workers, 0),
                             ("prefetch_factor", prefetch_factor, 1)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise DataConfigError(f"make_loader: {name}={value!r}; use an integer >= {low}")
    if not timeout >= 0:
        raise DataConfigError(f"make_loader: timeout={timeout!r}; use seconds >= 0 (0 waits forever)")


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    num_workers: int = 0,
    shuffle: bool = False,
    distributed: bool = False,
    seed: int = 0,
    drop_last: bool = False,
    num_replicas: int | None = None,
    rank: int | None = None,
    multiprocessing_context: str | None = None,
    prefetch_factor: int = 2,
    pin_memory: bool = False,
    timeout: float = 0,
    collate_fn: Callable | None = None,
) -> DataLoader:
    """Build a DataLoader for a video dataset.

    Args:
        dataset: map-style dataset; per-sample seeding is used when it sets ``supports_sample_seeds``.
        batch_size: samples per batch.
        num_workers: worker processes (0 loads in the main process). Workers are persistent.
        shuffle: shuffle each epoch (order depends on ``seed`` and the epoch).
        distributed: shard with ``DistributedSampler`` over ``num_replicas`` ranks; both default to
            the initialised ``torch.distributed`` process group.
        seed: base seed for shuffling, per-sample randomness and worker RNGs.
        drop_last: drop the last incomplete batch (and, when distributed, the uneven tail).
        num_replicas, rank: explicit world size and rank (distributed only).
        multiprocessing_context: worker start method; default ``"fork"`` (see module docstring).
        prefetch_factor: batches prefetched per worker (workers > 0 only).
        pin_memory: pin batches (useful only with a GPU).
        timeout: seconds to wait for a batch from a worker before raising (0 = forever).
        collate_fn: custom collate function.

    Raises:
        DataConfigError: a bad option (``batch_size < 1``, ``num_workers < 0``, ``timeout < 0``, ...).
            (An epoch with no batches is not refused here; ``vitzoo.train.fit`` refuses it.)

    Returns:
        the DataLoader. Its ``sampler`` is a :class:`SeededSampler` that advances the epoch on every
        pass; call ``loader.sampler.set_epoch(e)`` (or :func:`set_epoch`) when resuming.
    """
    _check_loader_options(batch_size=batch_size, num_workers=num_workers, prefetch_factor=prefetch_factor,
                          timeout=timeout)  # fmt: skip
    if distributed:
        if (num_replicas is None) != (rank is None):
            raise DataConfigError("make_loader: give both num_replicas and rank, or neither (use the process group)")
        index_sampler = DistributedSampler(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        rank = index_sampler.rank
    else:
        if num_replicas is not None or rank is not None:
            raise DataConfigError("make_loader: num_replicas/rank are only meaningful with distributed=True")
        index_sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=shuffle, seed=seed)
        rank = 0
    sampler = SeededSampler(
        index_sampler, seed=seed, rank=rank, with_seeds=bool(getattr(dataset, "supports_sample_seeds", False))
    )
    workers: dict = {}
    if num_workers > 0:
        workers = {
            "persistent_workers": True,
            "worker_init_fn": seed_worker,
            "multiprocessing_context": multiprocessing_context or default_multiprocessing_context(),
            "prefetch_factor": prefetch_factor,
            "timeout": timeout,
        }
    logger.debug("make_loader: %d samples, batch %d, %d workers %s", len(dataset), batch_size, num_workers, workers)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        collate_fn=collate_fn,
        generator=torch.Generator().manual_seed(seed),  # worker base seeds
        **workers,
    )


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Set the epoch of the next pass of a loader built by :func:`make_loader`."""
    if not hasattr(loader.sampler, "set_epoch"):
        raise TypeError("the loader's sampler has no set_epoch (not built by make_loader?)")
    loader.sampler.set_epoch(epoch)
