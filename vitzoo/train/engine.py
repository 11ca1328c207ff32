"""The training engine: everything about training that does not depend on what is learnt.

``fit_task(task, train_set, ...)`` trains a :class:`~vitzoo.train.task.Task` (single process, or DDP under
``torchrun``); the task turns a batch into a loss and metrics, the engine does the rest:

    train_set --loader--> batch --move_to(device)--> task(batch) under bf16 autocast --> StepOutput
        loss --backward (x accum_steps, DDP sync on the last)--> clip --> AdamW --> schedule, EMA, task.on_update
        metrics --window / epoch means over ranks--> loggers (JSONL, CSV, TensorBoard)
    every eval_every epochs: task.validate(val_data, ctx) --> best.safetensors by task.monitor
    checkpoints: task.model as weights; optimizer, schedule, EMA, task.extra_state_dict(), RNGs, position

The engine knows no labels, no class count and no input layout: ``task.model`` is what it saves (with vitzoo's
metadata, so ``vitzoo.load`` rebuilds it), what layer-wise lr decay and weight-decay exclusions read, what the
EMA averages and what validation sees (the EMA when there is one). Modules of the task outside its model
(projection heads, momentum targets) are optimised when they require grad and checkpointed either way.

Exact resume: a checkpoint holds everything the rest of the run depends on (weights, the task's other modules,
optimizer, scheduler, EMA, every rank's RNG states, the loader's generator and the position in the epoch), and
the training loader's order depends only on ``(seed, epoch)``. So a run stopped after ``k`` updates and resumed
ends with the same weights as an uninterrupted one (bitwise on CPU with ``num_workers=0``;
``tests/train/test_resume.py``, ``tests/train/test_label_free.py``). A checkpoint is written at every epoch end,
every ``save_every`` updates, on ``max_steps``, on Ctrl-C/SIGTERM (after the running update) and when an
exception escapes the loop (if the last update completed, and unless writing a checkpoint is what failed).

Reliability (``tests/train/test_reliability.py``): the run holds a lock on ``out_dir`` for its whole life
(:mod:`vitzoo.train.lock`; rank 0 under ``torchrun``), so a second run on the same directory refuses at once.
Checkpoint files are verified before they replace anything, resume takes the newest checkpoint that reads back
(:mod:`vitzoo.train.checkpointing`), and the metric logs hold each ``(kind, step)`` record once, so a run killed at
any point and resumed ends with the same weights, best weights and records as an uninterrupted one. Collectives
fail after ``train.dist_timeout_s`` when a rank stalls, instead of PyTorch's default 10-30 minutes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from timm.utils import ModelEmaV3
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from vitzoo.checkpoints.io import model_metadata, read_metadata
from vitzoo.checkpoints.load import load_checked
from vitzoo.durable import DamagedFileError, check_safetensors
from vitzoo.train.checkpointing import BEST_NAME, CheckpointManager, capture_rng, restore_rng, seed_everything
from vitzoo.train.config import ConfigError, TrainConfig, dump_yaml, train_config
from vitzoo.train.distributed import (
    DistInfo,
    all_reduce,
    any_rank,
    barrier,
    default_device,
    gather_objects,
    init_distributed,
)
from vitzoo.train.errors import CheckpointWriteError
from vitzoo.train.interrupt import GracefulStop
from vitzoo.train.loader import train_loader
from vitzoo.train.lock import lock_run_directory
from vitzoo.train.loggers import JsonlLogger, Logger, make_loggers, require_tensorboard
from vitzoo.train.optim import build_optimizer, build_scheduler
from vitzoo.train.plots import plot_training_curves
from vitzoo.train.task import Task, ValidationContext, move_to

log = logging.getLogger(__name__)


@dataclass
class TrainState:
    """Progress of a run, passed to callbacks after every update.

    A callback may set ``stop = True`` to end training after this update (a checkpoint is written).
    """

    step: int = 0  # optimizer updates done
    epoch: int = 0  # index of the current epoch (= completed epochs)
    update_in_epoch: int = 0  # updates done in the current epoch
    updates_per_epoch: int = 0
    total_steps: int = 0
    loss: float = math.nan  # mean loss over the last log window, averaged over ranks (set every log_every updates)
    lr: float = math.nan  # learning rate of the last update's last group (the highest with layer decay)
    metrics: dict[str, float] = field(default_factory=dict)  # the task's metrics over the last log window
    monitor: str = "loss"  # task.monitor
    best_value: float | None = None  # best validated task.monitor so far (None: no validation yet)
    best_step: int = -1
    epoch_sums: dict[str, float] = field(default_factory=dict)  # sums over the epoch's updates: loss and metrics
    stop: bool = False


@dataclass
class FitResult:
    """What :func:`fit_task` (and :func:`vitzoo.train.fit`) leaves behind."""

    out_dir: Path
    step: int
    epoch: int
    completed: bool  # all epochs done (False after max_steps or an interrupt)
    interrupted: bool  # stopped by Ctrl-C / SIGTERM
    last_checkpoint: Path | None  # state file of the last checkpoint (its weights sit next to it)
    best_checkpoint: Path | None  # best.safetensors, when there was validation data
    monitor: str = "loss"  # the validation metric that chose best_checkpoint
    best_value: float | None = None  # its best value
    validations: list[dict[str, float]] = field(default_factory=list)  # what task.validate returned, in order
    evaluations: list[Any] = field(default_factory=list)  # vitzoo.train.fit only: the EvalResult of each validation

    @property
    def best_top1(self) -> float | None:
        """``best_value`` when the monitor is ``top1`` (classification), else None."""
        return self.best_value if self.monitor == "top1" else None


def is_better(value: float, best: float | None, *, higher_is_better: bool) -> bool:
    """True when ``value`` improves on ``best`` (always when there is no best yet; never for NaN)."""
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value > best if higher_is_better else value < best


class _Window:
    """Sums of the update losses and metrics, samples and updates since the last metrics line."""

    def __init__(self, device: torch.device, names: Sequence[str]) -> None:
        self.device = device
        self.names = ["loss", *names]
        self.reset()

    def reset(self) -> None:
        """Start a new window now."""
        self.sums = torch.zeros(len(self.names), device=self.device)  # (loss, *metrics)
        self.samples = self.updates = 0
        self.start = time.perf_counter()

    def add(self, values: torch.Tensor, samples: int) -> None:
        """Count one update (its values stay on the device: no synchronisation here)."""
        self.sums += values
        self.samples += samples
        self.updates += 1


def _metadata(model: nn.Module) -> dict[str, str]:
    """vitzoo's model metadata (name + config) when the model has a config, else none."""
    return model_metadata(model) if hasattr(model, "cfg") else {}


class Engine:
    """The state and parts of one training run of a task (kept together so the loop reads top to bottom).

    Build it, optionally :meth:`resume`, :meth:`open_loggers`, then :meth:`run`; :func:`fit_task` does all that.
    """

    def __init__(
        self,
        task: Task,
        train_set: Dataset,
        *,
        cfg: TrainConfig,
        out_dir: Path,
        val_data: Any = None,
        callbacks: Sequence[Callable[[TrainState], None]] = (),
    ) -> None:
        if not isinstance(task, Task):
            raise TypeError(f"the engine trains a vitzoo.train.Task, got {type(task).__name__}")
        if cfg.tensorboard:
            require_tensorboard()  # before any work
        self.cfg = cfg
        self.out_dir = out_dir
        self.callbacks = list(callbacks)
        self.val_data = val_data
        self.info: DistInfo = init_distributed(timeout_s=cfg.dist_timeout_s)
        self.device = default_device(self.info, cfg.device)
        seed_everything(cfg.seed + self.info.rank)
        self.task = task.to(self.device)
        self.model = task.model  # what is saved, averaged by the EMA and validated
        if cfg.grad_checkpointing:
            if not hasattr(self.model, "set_grad_checkpointing"):
                name = type(self.model).__name__
                raise TypeError(f"{name} has no set_grad_checkpointing(); set grad_checkpointing=False")
            self.model.set_grad_checkpointing(True)
        self.optimizer = build_optimizer(self.task, cfg)
        self.trainable = [p for p in self.task.parameters() if p.requires_grad]
        self.loader, self.sampler = train_loader(
            train_set,
            batch_size=cfg.batch_size,
            num_workers=cfg.num_workers,
            seed=cfg.seed,
            distributed=self.info.enabled,
        )
        batches = len(self.loader)
        self.updates_per_epoch = batches // cfg.accum_steps
        if self.updates_per_epoch < 1:
            raise ConfigError(
                f"one update needs {cfg.accum_steps} batches of {cfg.batch_size} samples per process, but the "
                f"training set gives {batches} batches per process ({len(train_set)} samples, "
                f"{self.info.world_size} processes); lower batch_size or accum_steps"
            )
        if batches % cfg.accum_steps:
            log.info("%d batches per epoch not used (not a multiple of accum_steps)", batches % cfg.accum_steps)
        self.scheduler, total = build_scheduler(self.optimizer, cfg, updates_per_epoch=self.updates_per_epoch)
        self.ema = ModelEmaV3(self.model, decay=cfg.ema_decay) if cfg.ema_decay is not None else None
        self.wrapped: nn.Module = self.task  # the task (forward = training step), or DDP around it
        if self.info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.wrapped = DistributedDataParallel(self.task, device_ids=ids)
        self.ckpt = CheckpointManager(out_dir / "checkpoints", keep_last=cfg.keep_last)
        self.loggers: list[Logger] = []
        self.jsonl: JsonlLogger | None = None
        self.state = TrainState(updates_per_epoch=self.updates_per_epoch, total_steps=total, monitor=task.monitor)
        self.metric_names: list[str] | None = None  # the task's metric names, fixed by the first update
        self.generator_state = self.loader.generator.get_state()  # at the start of the current epoch
        self.last_saved: tuple[int, int] | None = None  # (step, epoch) of the last checkpoint written or resumed
        self.last_checkpoint: Path | None = None
        self.rng = capture_rng()  # RNG states right after the last completed update (what a checkpoint stores)
        self.dirty = False  # True while an optimizer step has changed the weights but not the step count yet
        self.validations: list[dict[str, float]] = []

    # ----------------------------------------------------------------------------- logging
    def open_loggers(self) -> None:
        """Open the run's metric writers on the main rank (after :meth:`resume`: they drop later records)."""
        if not self.info.is_main:
            return
        cfg = self.cfg
        self.loggers = make_loggers(self.out_dir, csv=cfg.csv, tensorboard=cfg.tensorboard, resume_step=self.state.step)
        self.jsonl = next(lg for lg in self.loggers if isinstance(lg, JsonlLogger))

    def log(self, record: dict[str, Any]) -> None:
        """Write one record to every logger (main rank only)."""
        for logger in self.loggers:
            logger.log(record)

    def close_loggers(self) -> None:
        """Close the metric writers."""
        for logger in self.loggers:
            logger.close()

    # ----------------------------------------------------------------------------- checkpoints
    def state_dict(self, *, gather: bool = True) -> dict[str, Any]:
        """Everything but the weights of ``task.model``; ``gather=False`` stores only this rank's RNG."""
        s = self.state
        rng = gather_objects(self.rng) if gather else [self.rng]
        # the loader generator as it was before this epoch's iter() (which draws the worker base seed)
        generator = self.generator_state if s.update_in_epoch > 0 else self.loader.generator.get_state()
        return {
            "step": s.step,
            "epoch": s.epoch,
            "update_in_epoch": s.update_in_epoch,
            "updates_per_epoch": self.updates_per_epoch,
            "world_size": self.info.world_size,
            "monitor": s.monitor,
            "best_value": s.best_value,
            "best_step": s.best_step,
            "epoch_sums": dict(s.epoch_sums),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": self.ema.module.state_dict() if self.ema is not None else None,
            "task": self.task.extra_state_dict(),
            "rng": rng,
            "loader_generator": generator,
            "train_config": json.dumps(self.cfg.__dict__, default=list),
        }

    @property
    def saved(self) -> bool:
        """True when the last checkpoint holds the current position (step and epoch)."""
        return self.last_saved == (self.state.step, self.state.epoch)

    def save(self, *, gather: bool = True) -> None:
        """Write a checkpoint at the current position (rank 0 writes; all ranks take part in the RNG gather).

        A checkpoint taken at the last update of an epoch (``save_every``, ``max_steps``) is written again at the
        epoch end, with the epoch counted as done: resuming from it must not log and validate that epoch twice.
        """
        if self.saved:
            return
        state = self.state_dict(gather=gather)
        if self.info.is_main:
            self.last_checkpoint = self.ckpt.save(
                step=self.state.step,
                weights=self.model.state_dict(),
                state=state,
                metadata={**_metadata(self.model), "vitzoo.epoch": str(self.state.epoch)},
            )
            log.info("checkpoint: %s", self.last_checkpoint)
        self.last_saved = (self.state.step, self.state.epoch)

    def resume(self, source: bool | str | os.PathLike) -> None:
        """Load the newest checkpoint that reads back (``source=True``) or the one named (its state or weights file).

        Unreadable newer checkpoints (``source=True``) and every checkpoint after the one resumed from are moved to
        ``checkpoints/set_aside/``, so pruning never keeps them in place of good ones; a checkpoint that does not
        fit this run (another model, dataset size, batch size) raises :class:`ConfigError`.
        """
        if source is True:
            path, weights, saved = self.ckpt.load_latest()
        else:
            path = Path(source)
            if path.suffix == ".safetensors":
                path = path.with_name(path.name.replace(".safetensors", ".state.pt"))
            weights, saved = self.ckpt.load(path)
        saved = _upgrade_state(saved)
        changed = _changed_options(json.loads(saved["train_config"]), self.cfg)
        if changed:
            log.warning(
                "resuming with changed options %s: the optimizer and lr schedule continue as saved, so the run will "
                "not match an uninterrupted one",
                changed,
            )
        if saved["updates_per_epoch"] != self.updates_per_epoch:
            raise ConfigError(
                f"cannot resume from {path}: it has {saved['updates_per_epoch']} updates per epoch, this run "
                f"{self.updates_per_epoch} (dataset size, batch_size, accum_steps and process count must match)"
            )
        try:
            if hasattr(self.model, "cfg"):
                load_checked(self.model, weights, source=str(path))
            else:
                self.model.load_state_dict(weights, strict=True)
            self.task.load_extra_state_dict(saved["task"])
        except (ValueError, RuntimeError) as exc:  # another model or task than the one that wrote the checkpoint
            raise ConfigError(f"cannot resume from {path}: {str(exc).splitlines()[0]}") from exc
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        if self.ema is not None:
            if saved["ema"] is None:
                log.warning("the checkpoint has no EMA weights; the EMA restarts from the loaded weights")
                self.ema.module.load_state_dict(self.model.state_dict())
            else:
                self.ema.module.load_state_dict(saved["ema"])
        rngs = saved["rng"]
        if saved["world_size"] == self.info.world_size and self.info.rank < len(rngs):
            restore_rng(rngs[self.info.rank])
        else:
            log.warning(
                "no saved RNG state for rank %d; reseeding (the run is no longer bitwise reproducible)", self.info.rank
            )
            seed_everything(self.cfg.seed + self.info.rank + saved["step"])
        self.loader.generator.set_state(saved["loader_generator"])
        self.generator_state = saved["loader_generator"]
        s = self.state
        s.step, s.epoch, s.update_in_epoch = saved["step"], saved["epoch"], saved["update_in_epoch"]
        s.epoch_sums = dict(saved["epoch_sums"])
        if saved["monitor"] == s.monitor:
            s.best_value, s.best_step = saved["best_value"], saved["best_step"]
        else:
            log.warning(
                "the checkpoint chose its best weights by %r, this task by %r: best.safetensors starts over",
                saved["monitor"],
                s.monitor,
            )
        self.scheduler.step_update(s.step)
        self.rng = capture_rng()
        self.last_saved = (s.step, s.epoch)
        self.last_checkpoint = path
        stale_best = self.stale_best()  # read by every rank, so that all of them forget the same best value
        if stale_best is not None:
            if s.best_value is not None:
                log.warning("%s is %s: the best weights are chosen again at the next validation", BEST_NAME, stale_best)
            s.best_value, s.best_step = None, -1
        barrier()  # every rank has read its files before the main rank moves any
        if self.info.is_main:
            self.tidy_after_resume(stale_best)
        log.info("resumed from %s: step %d, epoch %d (+%d updates)", path, s.step, s.epoch, s.update_in_epoch)
        if s.epoch >= self.cfg.epochs:
            log.info("the run is already complete (%d epochs): nothing to train", self.cfg.epochs)

    def stale_best(self) -> str | None:
        """Why ``best.safetensors`` cannot stand for the resumed state's best value (damaged, or chosen after the
        step resumed from, so the file the state refers to was replaced), or None."""
        best = self.ckpt.best_path
        if not best.is_file():
            return None
        try:
            check_safetensors(best)
            best_step = int(read_metadata(best).get("vitzoo.step", -1))
        except (DamagedFileError, ValueError) as exc:
            return f"damaged ({exc})"
        return f"chosen at step {best_step}, after step {self.state.step}" if best_step > self.state.step else None

    def tidy_after_resume(self, stale_best: str | None) -> None:
        """Make the checkpoint folder agree with the resumed position (main rank; it holds the run's lock).

        Checkpoints after the resumed step (unreadable ones, or a future the resume abandons) and a stale
        ``best.safetensors`` (:meth:`stale_best`) go to ``set_aside/``; what an interrupted save left is removed.
        """
        s, ckpt = self.state, self.ckpt
        ckpt.set_aside(ckpt.newer_than(s.step), f"written after step {s.step}, the step resumed from")
        if stale_best is not None:
            ckpt.set_aside([ckpt.best_path], stale_best)
        ckpt.clean()

    # ----------------------------------------------------------------------------- training
    def _values(self, loss: torch.Tensor, metrics: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(loss, *metrics)`` as one float32 vector, the metric names checked against the first update's."""
        if "loss" in metrics:
            raise ValueError("StepOutput.metrics must not contain 'loss': the engine logs StepOutput.loss as 'loss'")
        if self.metric_names is None:
            self.metric_names = list(metrics)
        elif list(metrics) != self.metric_names:
            raise ValueError(
                f"StepOutput.metrics must name the same metrics at every step: first {self.metric_names}, "
                f"now {list(metrics)}"
            )
        values = [loss.detach().float().reshape(())]
        values += [torch.as_tensor(v, device=self.device).detach().float().reshape(()) for v in metrics.values()]
        return torch.stack(values)  # (1 + M,)

    def update(self, batches) -> tuple[torch.Tensor, int]:
        """One optimizer update over ``accum_steps`` micro-batches, then the step count, scheduler, EMA and
        ``task.on_update``.

        Returns (mean over the micro-batches of (loss, *metrics), samples used).
        """
        cfg = self.cfg
        self.optimizer.zero_grad(set_to_none=True)
        values = None
        samples = 0
        for micro in range(cfg.accum_steps):
            batch = move_to(next(batches), self.device)
            last = micro == cfg.accum_steps - 1
            sync = contextlib.nullcontext() if last or not self.info.enabled else self.wrapped.no_sync()
            with sync:
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16"):
                    out = self.wrapped(batch)
                (out.loss / cfg.accum_steps).backward()
            step_values = self._values(out.loss, out.metrics)
            values = step_values if values is None else values + step_values
            samples += out.batch_size
        if cfg.clip_grad is not None:
            nn.utils.clip_grad_norm_(self.trainable, cfg.clip_grad)
        self.dirty = True
        self.optimizer.step()
        s = self.state
        s.lr = self.optimizer.param_groups[-1]["lr"]
        s.step += 1
        s.update_in_epoch += 1
        self.scheduler.step_update(s.step)
        if self.ema is not None:
            self.ema.update(self.model, step=s.step)
        self.task.on_update(s.step, s.total_steps)
        self.rng = capture_rng()
        self.dirty = False
        return values / cfg.accum_steps, samples

    def validate(self) -> dict[str, float]:
        """Validate the EMA weights (if any, else the model); keep ``best.safetensors`` on improvement."""
        cfg, s, task = self.cfg, self.state, self.task
        target = self.ema.module if self.ema is not None else self.model
        ctx = ValidationContext(
            model=target,
            device=self.device,
            step=s.step,
            epoch=s.epoch,
            batch_size=cfg.eval_batch_size or cfg.batch_size,
            num_workers=cfg.num_workers,
            amp=cfg.amp,
            out_dir=self.out_dir / "eval" / f"step_{s.step:08d}",
            progress=cfg.progress,
        )
        result = task.validate(self.val_data, ctx)
        if task.monitor not in result:
            raise KeyError(
                f"{type(task).__name__}.validate returned {sorted(result)}, without its monitor {task.monitor!r}"
            )
        result = {k: float(v) if isinstance(v, torch.Tensor) else v for k, v in result.items()}
        self.validations.append(result)
        self.log({"kind": "val", "step": s.step, "epoch": s.epoch, **result, "time": time.time()})
        log.info(
            "epoch %d step %d validation: %s", s.epoch, s.step, ", ".join(f"{k} {v:.4g}" for k, v in result.items())
        )
        value = float(result[task.monitor])
        if is_better(value, s.best_value, higher_is_better=task.higher_is_better):
            s.best_value, s.best_step = value, s.step
            if self.info.is_main:
                meta = {**_metadata(target), "vitzoo.step": str(s.step), f"vitzoo.{task.monitor}": repr(value)}
                self.ckpt.save_best(target.state_dict(), meta)
        return result

    def log_window(self, window: _Window, bar: tqdm) -> None:
        """Average the window's loss and metrics over updates and ranks, add them to the epoch sums, log a line,
        reset the window."""
        s, world = self.state, self.info.world_size
        means = (all_reduce(window.sums / window.updates) / world).tolist()
        values = dict(zip(window.names, means, strict=True))
        s.loss = values.pop("loss")
        s.metrics = values
        for name, mean in (("loss", s.loss), *values.items()):
            s.epoch_sums[name] = s.epoch_sums.get(name, 0.0) + mean * window.updates
        rate = window.samples * world / max(time.perf_counter() - window.start, 1e-9)
        bar.set_postfix(loss=f"{s.loss:.4f}", lr=f"{s.lr:.2e}", clips_s=f"{rate:.1f}")
        epoch = s.epoch + s.update_in_epoch / self.updates_per_epoch
        record = {"kind": "train", "step": s.step, "epoch": epoch, "loss": s.loss, "lr": s.lr, "clips_per_s": rate}
        self.log({**record, **values, "time": time.time()})
        window.reset()

    def stop_reason(self, stopper: GracefulStop) -> str | None:
        """Why training stops after this update (None: it goes on); the same answer on every rank."""
        s, cfg = self.state, self.cfg
        reason = None
        if cfg.max_steps is not None and s.step >= cfg.max_steps:
            reason = "max_steps"
        elif s.stop:
            reason = "callback"
        elif stopper.requested:
            reason = "signal"
        if self.info.enabled and any_rank(reason is not None, self.device) and reason is None:
            reason = "signal"  # another rank was interrupted: stop together
        return reason

    def run(self, stopper: GracefulStop) -> str:
        """The epoch loop; returns why it ended: ``"completed"``, ``"max_steps"``, ``"callback"`` or ``"signal"``."""
        cfg, s = self.cfg, self.state
        for epoch in range(s.epoch, cfg.epochs):
            s.epoch = epoch
            if s.update_in_epoch == 0:
                s.epoch_sums = {}
                self.generator_state = self.loader.generator.get_state()
            else:  # resuming mid-epoch: same generator state and order as the interrupted pass
                self.loader.generator.set_state(self.generator_state)
            self.sampler.set_epoch(epoch)
            self.sampler.skip_next(s.update_in_epoch * cfg.accum_steps * cfg.batch_size)
            self.task.train()
            batches = iter(self.loader)
            bar = tqdm(
                total=self.updates_per_epoch,
                initial=s.update_in_epoch,
                desc=f"epoch {epoch + 1}/{cfg.epochs}",
                unit="step",
                disable=not (cfg.progress and self.info.is_main),
                dynamic_ncols=True,
            )
            window = None
            reason = None
            while s.update_in_epoch < self.updates_per_epoch:
                values, samples = self.update(batches)
                if window is None:  # the metric names are known after the first update
                    window = _Window(self.device, self.metric_names)
                window.add(values, samples)
                bar.update(1)
                last_of_epoch = s.update_in_epoch == self.updates_per_epoch
                if s.step % cfg.log_every == 0 or last_of_epoch:
                    self.log_window(window, bar)
                for callback in self.callbacks:
                    callback(s)
                reason = self.stop_reason(stopper)
                if reason is not None:
                    if window.updates:
                        self.log_window(window, bar)
                    break
                if cfg.save_every and s.step % cfg.save_every == 0:
                    self.save()
            bar.close()
            if reason is not None:
                self.save()
                return reason
            s.epoch, s.update_in_epoch = epoch + 1, 0
            means = {name: total / self.updates_per_epoch for name, total in s.epoch_sums.items()}
            self.log({"kind": "epoch", "step": s.step, "epoch": s.epoch, **means, "time": time.time()})
            due = cfg.eval_every and (s.epoch % cfg.eval_every == 0 or s.epoch == cfg.epochs)
            if self.val_data is not None and due:
                self.validate()
            s.epoch_sums = {}
            self.save()
        return "completed"


# Options that may differ between a run and its resumption without changing what is computed.
FREE_ON_RESUME = frozenset(
    {
        "max_steps",
        "progress",
        "plot",
        "csv",
        "tensorboard",
        "log_every",
        "num_workers",
        "eval_every",
        "eval_batch_size",
        "keep_last",
        "save_every",
        "device",
        "dist_timeout_s",
    }
)


def _changed_options(saved: dict[str, Any], cfg: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """``{name: (saved value, current value)}`` for the options that differ and matter for the result."""
    current = json.loads(json.dumps(cfg.__dict__, default=list))
    return {k: (saved.get(k), v) for k, v in current.items() if k not in FREE_ON_RESUME and saved.get(k, v) != v}


def _upgrade_state(saved: dict[str, Any]) -> dict[str, Any]:
    """A state file written before tasks (classification only) in today's terms: its best top-1 becomes the best
    value of the ``top1`` monitor, its epoch loss sum the epoch sums, and it has no task state."""
    if "monitor" in saved:
        return saved
    found = saved["best_step"] >= 0
    return {
        **saved,
        "monitor": "top1",
        "best_value": saved["best_top1"] if found else None,
        "epoch_sums": {"loss": saved["epoch_loss_sum"]} if saved["update_in_epoch"] else {},
        "task": {},
    }


def fit_task(
    task: Task,
    train_set: Dataset,
    *,
    out_dir: str | os.PathLike,
    val_data: Any = None,
    config: TrainConfig | None = None,
    resume: bool | str | os.PathLike = False,
    callbacks: Sequence[Callable[[TrainState], None]] = (),
    run_config: Any = None,
    **options: Any,
) -> FitResult:
    """Train ``task`` on ``train_set``; validate on ``val_data``; write logs, plots and checkpoints to ``out_dir``.

    Args:
        task: a :class:`~vitzoo.train.task.Task` (its model and other modules are moved to the device).
        train_set: map-style dataset whose samples, collated by the default collate, are the task's batches.
            Loaded with ``vitzoo.data.make_loader`` (shuffled per epoch from ``seed``, sharded under ``torchrun``).
        out_dir: run directory: ``metrics.jsonl`` (+ ``.csv``, ``tensorboard/``), ``training_curves.png``,
            ``checkpoints/`` (``step_*.safetensors`` + ``step_*.state.pt``, ``best.safetensors``), ``eval/step_*/``
            (the task's reports), ``train_config.yaml``.
        val_data: passed to ``task.validate`` every ``eval_every`` epochs (None: no validation, no best weights).
        config: a :class:`TrainConfig`; ``options`` replace its fields (``fit_task(..., epochs=3, lr=1e-3)``),
            unknown names raise :class:`vitzoo.train.ConfigError` with close matches.
        resume: ``True`` continues from the latest checkpoint in ``out_dir`` (an error if there is none), a path
            from that checkpoint; ``False`` starts afresh and refuses an ``out_dir`` that already has checkpoints.
        callbacks: called with the :class:`TrainState` after every update, on every rank; setting
            ``state.stop = True`` ends training after a checkpoint. An exception raised by a callback is
            re-raised after a checkpoint is written.
        run_config: the full recipe (any dataclass), saved as ``config.yaml`` next to the metrics.

    Returns:
        a :class:`FitResult`. After Ctrl-C / SIGTERM it returns normally with ``interrupted=True`` once
        the checkpoint is written (a second Ctrl-C aborts at once).
    """
    if isinstance(train_set, DataLoader) or isinstance(val_data, DataLoader):
        raise TypeError("fit takes datasets, not DataLoaders: it builds its own (seeded, resumable, sharded) loaders")
    cfg = train_config(config, **options)
    out_dir = Path(out_dir)
    info = init_distributed(timeout_s=cfg.dist_timeout_s)
    lock = lock_run_directory(out_dir, is_main=info.is_main, distributed=info.enabled)
    try:
        engine = Engine(task, train_set, cfg=cfg, out_dir=out_dir, val_data=val_data, callbacks=callbacks)
        return _train(engine, resume=resume, run_config=run_config)
    finally:
        lock.release()


def _train(engine: Engine, *, resume: bool | str | os.PathLike, run_config: Any) -> FitResult:
    """The part of :func:`fit_task` that runs under the run directory's lock."""
    cfg, out_dir = engine.cfg, engine.out_dir
    if resume:
        engine.resume(resume)
    elif engine.ckpt.latest() is not None:
        raise FileExistsError(
            f"{out_dir} already holds checkpoints; resume=True (--resume) continues that run, or choose another out_dir"
        )
    engine.open_loggers()
    if engine.info.is_main:
        dump_yaml(cfg, out_dir / "train_config.yaml")
        if run_config is not None:
            dump_yaml(run_config, out_dir / "config.yaml")
    reason = "exception"
    try:
        with GracefulStop(rank=engine.info.rank) as stopper:
            reason = engine.run(stopper)
    except BaseException as exc:
        # Unless the error hit between an optimizer step and the step count (engine.dirty), the weights, optimizer
        # and engine.rng are those of update engine.state.step: save them, without collectives (other ranks may be
        # gone). Not when writing a checkpoint is what failed (a full disk): the last good one stays the latest.
        if not engine.saved and not engine.dirty and not isinstance(exc, CheckpointWriteError):
            try:
                engine.save(gather=not engine.info.enabled)
            except Exception as save_error:  # never hide the original error
                log.error("could not write a checkpoint after the error: %s", save_error)
        raise
    finally:
        engine.close_loggers()
        if engine.jsonl is not None and cfg.plot and engine.jsonl.records():
            try:
                plot_training_curves(engine.jsonl.records(), out_dir / "training_curves.png")
            except Exception as plot_error:  # e.g. a full disk: the run's own outcome matters more
                log.error("could not write %s: %s", out_dir / "training_curves.png", plot_error)
    best = engine.ckpt.best_path
    s = engine.state
    return FitResult(
        out_dir=out_dir,
        step=s.step,
        epoch=s.epoch,
        completed=reason == "completed",
        interrupted=reason == "signal",
        last_checkpoint=engine.last_checkpoint,
        best_checkpoint=best if best.is_file() else None,
        monitor=engine.task.monitor,
        best_value=s.best_value,
        validations=engine.validations,
    )
