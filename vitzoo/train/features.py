"""One loop that runs a model over a dataset: evaluation, frozen features for kNN and linear probes.

:func:`model_outputs` is the loop: the model in eval mode (its mode restored afterwards), no gradients, optional
bfloat16 autocast, a progress bar on a terminal, and multi-view batches ``(B, V, *input)`` folded into one pass.
:func:`vitzoo.train.eval.evaluate` reduces its outputs to accuracy counters; :func:`extract_features` keeps them.

Under ``torchrun`` a dataset is sharded like evaluation: :class:`ShardSampler` gives rank ``r`` of ``W`` the
samples ``r, r + W, ...`` in order (no padding, no duplicates), and :func:`extract_features` gathers the shards
back into dataset order (:func:`unshard`), so every rank holds the features one process computes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from vitzoo.progress import progress_bar
from vitzoo.train.distributed import gather_objects, rank, world_size

AMP_MODES = ("none", "bf16")


class ShardSampler(Sampler):
    """Indices ``rank, rank + world_size, ...`` in order (every sample on exactly one rank).

    For datasets that take ``(index, seed)`` keys (``supports_sample_seeds``), yields ``(index, seed + index)``
    so decoding never draws from the global RNG.
    """

    def __init__(self, length: int, *, rank: int = 0, world_size: int = 1, with_seeds: bool = False, seed: int = 0):
        self.indices = range(rank, length, world_size)
        self.with_seeds = with_seeds
        self.seed = seed

    def __iter__(self):
        for i in self.indices:
            yield (i, self.seed + i) if self.with_seeds else i

    def __len__(self) -> int:
        return len(self.indices)


def eval_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    seed: int = 0,
    with_seeds: bool | None = None,
) -> DataLoader:
    """An in-order DataLoader over this rank's shard of ``dataset`` (see :class:`ShardSampler`).

    ``with_seeds``: pass ``(index, seed)`` keys (default: when the dataset ``supports_sample_seeds``); ``False``
    reads plain indices.
    """
    from vitzoo.data.loader import default_multiprocessing_context, seed_worker

    if with_seeds is None:
        with_seeds = bool(getattr(dataset, "supports_sample_seeds", False))
    sampler = ShardSampler(len(dataset), rank=rank, world_size=world_size, with_seeds=with_seeds, seed=seed)
    workers = {}
    if num_workers > 0:
        workers = {"worker_init_fn": seed_worker, "multiprocessing_context": default_multiprocessing_context()}
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, **workers)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` wrapper (``model`` itself otherwise)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (CPU for a model without parameters)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


@torch.no_grad()
def model_outputs(
    model: nn.Module,
    batches: Iterable,
    *,
    device: torch.device | str | None = None,
    amp: str = "none",
    input_ndim: int | None = None,
    progress: bool = True,
    desc: str = "features",
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(outputs, labels)`` for every ``(inputs, labels[, ...])`` batch: ``model(inputs)`` in float32.

    The model (unwrapped from DDP) runs in eval mode, its mode restored when the loop ends (close the generator,
    e.g. with :func:`contextlib.closing`, when you stop early), under bfloat16 autocast with ``amp="bf16"``.
    With ``input_ndim`` (the dimensions of a batch of single inputs: 5 for clips, 4 for images), inputs are
    ``(B, V, *input)`` or ``(B, *input)`` (``V = 1``), the ``B V`` views go through the model in one pass and
    outputs are ``(B, V, ...)``; without it, inputs go to the model as they are and outputs are ``(B, ...)``.
    Labels are returned as given, as tensors (not moved). ``progress``: a bar on a terminal.
    """
    if amp not in AMP_MODES:
        raise ValueError(f"amp={amp!r}; expected 'none' or 'bf16'")
    module = unwrap(model)
    device = torch.device(device) if device is not None else model_device(module)
    was_training = module.training
    module.eval()
    try:
        for batch in progress_bar(batches, enabled=progress, desc=desc, unit="batch", leave=False):
            inputs, labels = batch[0], batch[1]
            b = len(inputs)
            if input_ndim is not None:
                inputs = _fold_views(inputs, input_ndim)  # (B V, *input)
            inputs = inputs.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
                outputs = module(inputs)
            outputs = outputs.float()
            if input_ndim is not None:
                outputs = outputs.unflatten(0, (b, -1))  # (B, V, ...)
            yield outputs, torch.as_tensor(labels)
    finally:
        module.train(was_training)


def _fold_views(inputs: torch.Tensor, input_ndim: int) -> torch.Tensor:
    """``(B, V, *input)`` or ``(B, *input)`` -> ``(B V, *input)``."""
    if inputs.ndim == input_ndim:
        inputs = inputs.unsqueeze(1)  # (B, 1, *input)
    if inputs.ndim != input_ndim + 1:
        raise ValueError(
            f"expected batches of shape (B, V, *input) or (B, *input) with {input_ndim - 1}-D inputs, "
            f"got {tuple(inputs.shape)}"
        )
    return inputs.flatten(0, 1)  # (B V, *input)


def loader_features(
    model: nn.Module,
    loader: Iterable,
    *,
    device: torch.device | str | None = None,
    amp: str = "none",
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features ``(n, D)`` float32 (CPU) and labels ``(n,)`` of every ``(input, label)`` batch of ``loader``, in
    order (an empty loader gives ``(0, 0)`` features). The model must return ``(B, D)``."""
    features, labels = [], []
    with closing(model_outputs(model, loader, device=device, amp=amp, progress=progress)) as batches:
        for out, targets in batches:
            if out.ndim != 2:
                raise ValueError(f"the model returned shape {tuple(out.shape)}; create it with num_classes=0")
            features.append(out.cpu())  # (B, D)
            labels.append(targets.cpu())
    if not features:
        return torch.zeros(0, 0), torch.zeros(0, dtype=torch.long)
    return torch.cat(features), torch.cat(labels).long()


def unshard(parts: Sequence[torch.Tensor]) -> torch.Tensor:
    """Rank ``r``'s rows (samples ``r, r + W, ...``, see :class:`ShardSampler`) of ``W = len(parts)`` ranks ->
    all rows in dataset order."""
    total, width = sum(len(p) for p in parts), len(parts)
    template = next((p for p in parts if len(p)), parts[0])
    out = template.new_empty((total, *template.shape[1:]))
    for r, part in enumerate(parts):
        expected = len(range(r, total, width))
        if len(part) != expected:
            raise ValueError(
                f"rank {r} holds {len(part)} of {total} rows; its shard has {expected} ({r}, {r} + {width}, ...)"
            )
        if len(part):
            out[r::width] = part
    return out


def extract_features(
    model: nn.Module,
    data: Dataset | DataLoader,
    *,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    num_workers: int = 0,
    amp: str = "none",
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``model(x)`` for every sample of ``data`` in order -> features ``(N, D)`` float32 (CPU), labels ``(N,)``.

    ``data`` is a map-style dataset (read in order, ``batch_size`` at a time; sharded over the ranks of a process
    group and gathered back, so every rank returns all ``N`` rows) or a ready ``DataLoader`` (read whole on every
    rank). The model runs in eval mode (its mode is restored afterwards), under bfloat16 autocast with
    ``amp="bf16"``; it must return ``(B, D)`` (a backbone created with ``num_classes=0``).
    """
    if isinstance(data, DataLoader):
        r, w, loader = 0, 1, data
    else:  # this rank's shard, read with plain indices as a DataLoader over the dataset would
        r, w = rank(), world_size()
        shard = dict(rank=r, world_size=w, with_seeds=False)
        loader = eval_loader(data, batch_size=batch_size, num_workers=num_workers, **shard)
    features, labels = loader_features(model, loader, device=device, amp=amp, progress=progress and r == 0)
    if w > 1:
        shards = gather_objects((features, labels))  # [(features, labels) of rank 0, of rank 1, ...]
        features, labels = unshard([f for f, _ in shards]), unshard([y for _, y in shards])
    if not len(features):
        raise ValueError("the dataset is empty")
    return features, labels
