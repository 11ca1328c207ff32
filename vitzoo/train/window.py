"""The log window: what the engine sums between two metric lines (losses, the task's metrics, samples, updates),
and their means over updates and processes with the throughput when the line is written."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vitzoo.train.distributed import all_reduce


def step_vector(
    loss: torch.Tensor, metrics: dict[str, torch.Tensor], device: torch.device, names: list[str] | None
) -> tuple[torch.Tensor, list[str]]:
    """``(loss, *metrics)`` of one micro-batch as one float32 vector ``(1 + M,)``, and the metric names: those of
    the first update (``names`` None), which every later update must repeat."""
    if "loss" in metrics:
        raise ValueError("StepOutput.metrics must not contain 'loss': the engine logs StepOutput.loss as 'loss'")
    if names is not None and list(metrics) != names:
        raise ValueError(
            f"StepOutput.metrics must name the same metrics at every step: first {names}, now {list(metrics)}"
        )
    values = [loss.detach().float().reshape(())]
    values += [torch.as_tensor(v, device=device).detach().float().reshape(()) for v in metrics.values()]
    return torch.stack(values), list(metrics) if names is None else names


@dataclass
class WindowMeans:
    """One closed window: ``values`` (``loss`` and the task's metrics, means over its updates and the processes),
    ``updates`` it counted and ``samples_per_s`` (samples of all processes per second of wall time)."""

    values: dict[str, float]
    updates: int
    samples_per_s: float


class MetricWindow:
    """Sums of the update losses and metrics, samples and updates since the last metrics line."""

    def __init__(self, device: torch.device, names: Sequence[str], *, start: float | None = None) -> None:
        self.device = device
        self.names = ["loss", *names]
        self.reset(start)

    def reset(self, start: float | None = None) -> None:
        """Start a new window at ``start`` (a ``time.perf_counter()`` value; default: now)."""
        self.sums = torch.zeros(len(self.names), device=self.device)  # (1 + M,): loss, *metrics
        self.samples = self.updates = 0
        self.start = time.perf_counter() if start is None else start

    def add(self, values: torch.Tensor, samples: int) -> None:
        """Count one update (its values stay on the device: no synchronisation here)."""
        self.sums += values
        self.samples += samples
        self.updates += 1

    def close(self, world_size: int) -> WindowMeans:
        """The window's means over its updates and over the processes (a collective: every rank calls it), then
        a new window."""
        means = (all_reduce(self.sums / self.updates) / world_size).tolist()
        rate = self.samples * world_size / max(time.perf_counter() - self.start, 1e-9)
        closed = WindowMeans(dict(zip(self.names, means, strict=True)), self.updates, rate)
        self.reset()
        return closed
