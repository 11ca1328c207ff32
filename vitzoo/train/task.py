"""The task interface: what the training engine trains, without the engine knowing about labels.

A :class:`Task` turns one batch into a loss and a few logged metrics, names the validation metric that picks
the best checkpoint (and whether higher is better), and may own modules besides the model: projection heads,
predictors, a momentum target network. The engine (optimizer, schedule, accumulation, autocast, EMA, DDP,
checkpoints, resume, logging) is the same for every task:

* it optimises every parameter of the task that requires grad (the model's and the heads');
* it calls ``task(batch)`` for each micro-batch (``forward`` is ``training_step``, so DDP can wrap the task),
  the batch already on the device, under bf16 autocast when ``train.amp`` is ``bf16`` (compute losses on
  ``.float()`` outputs); every parameter that requires grad must get a gradient at every step (DDP);
* it calls :meth:`Task.check_batch_size` before the first step (a loss that needs negatives, BatchNorm heads);
* it calls :meth:`Task.on_update` after every optimizer update (momentum targets, schedules), and
  :meth:`Task.resume_at` after a resume: whatever a task logs must come back from the checkpoint, either as a
  tensor of :meth:`Task.extra_state_dict` or recomputed from the step there;
* it records :attr:`Task.run_record` (with the model's config and the optimiser) in every checkpoint, and refuses
  a resume that changes any of it;
* it saves ``task.model`` as the checkpoint's weights (``vitzoo.load`` rebuilds it) and the rest of
  ``task.state_dict()`` (heads, target networks, their buffers) with the training state, and resumes both;
* it calls :meth:`Task.validate` every ``eval_every`` epochs and keeps the best weights by ``task.monitor``.

Supervised classification is one task (``vitzoo.train.tasks.classification``); self-supervised methods are
others (``vitzoo.ssl``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn


@dataclass
class StepOutput:
    """What one training step returns.

    ``loss`` is the scalar the engine calls ``backward`` on (and logs as ``loss``); ``metrics`` are scalars to log
    (detached; the engine averages them over its log window, the epoch and the processes), the same names at
    every step and never ``loss``; ``batch_size`` counts the samples (clips or images, not views) of this
    micro-batch, for throughput.
    """

    loss: torch.Tensor
    metrics: dict[str, torch.Tensor]
    batch_size: int


@dataclass
class ValidationContext:
    """Everything :meth:`Task.validate` may need from the engine.

    ``model`` is the network to evaluate: the EMA of ``task.model`` when the run keeps one, else the model
    itself. ``out_dir`` is where reports of this validation go (None: write nothing).
    """

    model: nn.Module
    device: torch.device
    step: int
    epoch: int
    batch_size: int
    num_workers: int = 0
    amp: str = "none"
    out_dir: Path | None = None
    progress: bool = True


class Task(nn.Module):
    """Base class of training tasks (see the module docstring).

    Subclasses implement :meth:`training_step` and :meth:`validate` and set :attr:`monitor` and
    :attr:`higher_is_better`. Modules assigned as attributes are part of the task: optimised when they have
    parameters that require grad, checkpointed and resumed with the model either way.
    """

    monitor: str = "loss"  # key of validate()'s result that selects best.safetensors
    higher_is_better: bool = False

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.checkpoint_metadata: dict[str, str] = {}  # written into every weight file the engine saves
        # what a resume must not change about the task (name, options; JSON values): the recipe loader fills it
        self.run_record: dict[str, Any] = {"task": type(self).__name__}

    def forward(self, batch: Any) -> StepOutput:
        """The training step (``forward`` so that ``DistributedDataParallel`` can wrap the task)."""
        return self.training_step(batch)

    def training_step(self, batch: Any) -> StepOutput:
        """One micro-batch (already on the task's device) -> loss and metrics."""
        raise NotImplementedError

    def on_update(self, step: int, total_steps: int) -> None:
        """Called after optimizer update ``step`` (1-based) of ``total_steps``; default: nothing."""

    def check_batch_size(self, batch_size: int, world_size: int) -> None:
        """Raise :class:`vitzoo.schema.ConfigError` (one line: the task, the batch, the minimum) when a batch of
        ``batch_size`` samples per process on ``world_size`` processes cannot train this task; default: any."""

    def resume_at(self, step: int, total_steps: int) -> None:
        """Called after a resume at update ``step`` of ``total_steps``: restore what the task derives from the
        update count (a schedule's current value) as :meth:`on_update` left it; default: nothing."""

    def validate(self, data: Any, ctx: ValidationContext) -> dict[str, float]:
        """Evaluate ``ctx.model`` on ``data``; the result must contain :attr:`monitor`."""
        raise NotImplementedError

    def extra_state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors of the task outside ``self.model`` (heads, targets, buffers): saved with the training state."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("model.")}

    def load_extra_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Inverse of :meth:`extra_state_dict`; every key must match (no silent partial resume)."""
        expected = set(self.extra_state_dict())
        if set(state) != expected:
            missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
            raise ValueError(f"task state does not match: missing {missing}, unexpected {unexpected}")
        own = dict(self.state_dict())
        own.update(state)
        self.load_state_dict(own, strict=True)


def move_to(batch: Any, device: torch.device | str) -> Any:
    """``batch`` with every tensor (in nested tuples, lists and dicts) moved to ``device`` (non-blocking)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple | list):
        return type(batch)(move_to(v, device) for v in batch)
    return batch
