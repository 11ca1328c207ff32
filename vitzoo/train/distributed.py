"""Multi-process training: the process group from ``torchrun``'s environment, and the few collectives used.

``torchrun --nproc_per_node=N -m vitzoo.cli.main train ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them and starts the process group
(NCCL when CUDA is available, gloo on CPU). Without them everything runs as a single process and the
helpers here are no-ops. :func:`rank`, :func:`world_size` and :func:`is_distributed` are the one place the
package asks where this process stands (training, evaluation, feature extraction, the SSL losses' gather).
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from vitzoo.schema import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size`` (0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, plots and writes checkpoints."""
        return self.rank == 0


def is_distributed() -> bool:
    """True when a process group with more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def init_distributed(backend: str | None = None, *, timeout_s: float | None = None) -> DistInfo:
    """Join the process group described by ``torchrun``'s environment variables (or return a 1-process info).

    Reuses a process group that is already initialised. ``backend`` defaults to ``nccl`` with CUDA, else ``gloo``.
    ``timeout_s``: how long a collective waits for a rank that does not arrive (stalled, dead) before it fails
    (``train.dist_timeout_s``; None: PyTorch's default, 10 minutes for NCCL and 30 for gloo).
    """
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    if not dist.is_available():
        raise RuntimeError(f"WORLD_SIZE={world_size} but this torch build has no torch.distributed")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    timeout = datetime.timedelta(seconds=timeout_s) if timeout_s is not None else None
    dist.init_process_group(backend=backend, timeout=timeout)
    info = DistInfo(dist.get_rank(), dist.get_world_size(), local_rank)
    log.info("process group: rank %d of %d (%s, timeout %s)", info.rank, info.world_size, backend, timeout)
    return info


def default_device(info: DistInfo, requested: str = "auto") -> torch.device:
    """``requested`` unless ``"auto"``: this process's GPU (``cuda:LOCAL_RANK``) when there is one, else CPU.

    Raises :class:`~vitzoo.schema.ConfigError` (one line, with the fix) for a device this machine does not have.
    """
    if requested == "auto":
        return torch.device(f"cuda:{info.local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = parse_device(requested)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(
                f"train.device={requested!r} but this machine has no usable CUDA GPU "
                "(torch.cuda.is_available() is False); set train.device=auto or cpu"
            )
        if device.index is not None and device.index >= count:
            raise ConfigError(f"train.device={requested!r} but this machine has {count} GPU(s), cuda:0..{count - 1}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"train.device={requested!r} but MPS is not available here; set train.device=auto or cpu")
    return device


def parse_device(text: str) -> torch.device:
    """``torch.device(text)``, or :class:`~vitzoo.schema.ConfigError` naming the accepted forms."""
    try:
        return torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"train.device={text!r} is not a device; use auto, cpu, cuda, cuda:N or mps") from None


def all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """In-place all-reduce (``"sum"`` or ``"max"``) across ranks; identity when not distributed."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return tensor


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is True on at least one (keeps ranks stopping at the same step)."""
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    return bool(all_reduce(value, "max").item() > 0)


def gather_objects(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` when not distributed)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    """Wait for every rank (no-op when not distributed)."""
    if is_distributed():
        dist.barrier()


def shutdown() -> None:
    """Destroy the process group if one is initialised (call once at the end of a ``torchrun`` program)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
