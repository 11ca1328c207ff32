"""The training engine: everything about training that does not depend on what is learnt.

``fit_task(task, train_set, ...)`` trains a :class:`~vitzoo.train.task.Task` (single process, or DDP under
``torchrun``); the task turns a batch into a loss and metrics, the engine does the rest:

    train_set --loader--> batch --move_to(device)--> task(batch) under bf16 autocast --> StepOutput
        loss --backward (x accum_steps, DDP sync on the last)--> clip --> AdamW --> schedule, EMA, task.on_update
        metrics --window / epoch means over ranks--> loggers (JSONL, CSV, TensorBoard)
    every eval_every epochs: task.validate(val_data, ctx) --> best.safetensors by task.monitor
    checkpoints: task.model as weights; optimizer, schedule, EMA, task.extra_state_dict(), RNGs, position

The engine knows nothing of what is learnt (targets, class count, input layout, the monitored metric's meaning):
``task.model`` is what it saves (with vitzoo's metadata, so ``vitzoo.load`` rebuilds it), what layer-wise lr
decay and weight-decay exclusions read, what the EMA averages and what validation sees (the EMA when there is
one). Modules of the task outside its model (projection heads, momentum targets) are optimised when they require
grad and checkpointed either way. Its parts live beside it: :mod:`~vitzoo.train.state` (``TrainState``,
``FitResult``), :mod:`~vitzoo.train.resume` (the checkpointed state and resume), :mod:`~vitzoo.train.window`
(log-window means and throughput), :mod:`~vitzoo.train.run_log` (metric files and console lines).

Exact resume: a checkpoint holds everything the rest of the run depends on (weights, the task's other modules,
optimizer, scheduler, EMA, every rank's RNG states, the loader's generator and the position in the epoch), and
the training loader's order depends only on ``(seed, epoch)``. So a run stopped after ``k`` updates and resumed
ends with the same weights as an uninterrupted one (bitwise on CPU with ``num_workers=0``; the resume tests of
``tests/train``). A checkpoint is written at every epoch end, every ``save_every`` updates, on ``max_steps``, on
Ctrl-C/SIGTERM (after the running update) and when an exception escapes the loop (if the last update completed,
and unless writing a checkpoint is what failed).

Reliability (``tests/train/test_reliability.py``): the run holds a lock on ``out_dir`` for its whole life
(:mod:`vitzoo.train.lock`; rank 0 under ``torchrun``), so a second run on the same directory refuses at once.
Checkpoint files are verified before they replace anything, resume takes the newest checkpoint that reads back
(:mod:`vitzoo.train.checkpointing`), and the metric logs hold each ``(kind, step)`` record once, so a run killed at
any point and resumed ends with the same weights, best weights and records as an uninterrupted one. Collectives
fail after ``train.dist_timeout_s`` when a rank stalls, instead of PyTorch's default 10-30 minutes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from timm.utils import ModelEmaV3
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from vitzoo.checkpoints.io import model_metadata
from vitzoo.errors import OutputExistsError
from vitzoo.progress import progress_bar
from vitzoo.train.checkpointing import CheckpointManager, capture_rng, seed_everything
from vitzoo.train.config import ConfigError, TrainConfig, dump_yaml, train_config
from vitzoo.train.distributed import DistInfo, any_rank, default_device, init_distributed
from vitzoo.train.errors import CheckpointWriteError
from vitzoo.train.interrupt import GracefulStop
from vitzoo.train.loader import train_loader
from vitzoo.train.lock import lock_run_directory
from vitzoo.train.loggers import require_tensorboard
from vitzoo.train.optim import build_optimizer, build_scheduler
from vitzoo.train.plots import plot_training_curves
from vitzoo.train.resume import resume as resume_run
from vitzoo.train.resume import training_state
from vitzoo.train.run_log import RunLog
from vitzoo.train.state import FitResult, TrainState, is_better
from vitzoo.train.task import Task, ValidationContext, move_to
from vitzoo.train.window import MetricWindow, step_vector

log = logging.getLogger(__name__)

__all__ = ["Engine", "FitResult", "TrainState", "fit_task", "is_better"]


def _metadata(model: nn.Module, task: Task) -> dict[str, str]:
    """vitzoo's model metadata (name + config) when the model has a config, else none; then what the task records
    with its weights (``task.checkpoint_metadata``: class names, the recipe's evaluation sampling)."""
    return {**(model_metadata(model) if hasattr(model, "cfg") else {}), **getattr(task, "checkpoint_metadata", {})}


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
        task.check_batch_size(cfg.batch_size, self.info.world_size)  # before any work: one line, not a mid-run error
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
        if cfg.compile:  # in place: the state dict keeps its names; before the DDP wrap, as torch advises
            self.model.compile()
        self.wrapped: nn.Module = self.task  # the task (forward = training step), or DDP around it
        if self.info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.wrapped = DistributedDataParallel(self.task, device_ids=ids)
        self.ckpt = CheckpointManager(out_dir / "checkpoints", keep_last=cfg.keep_last)
        self.run_log: RunLog | None = None  # opened by open_loggers()
        self.state = TrainState(updates_per_epoch=self.updates_per_epoch, total_steps=total, monitor=task.monitor)
        self.metric_names: list[str] | None = None  # the task's metric names, fixed by the first update
        self.generator_state = self.loader.generator.get_state()  # at the start of the current epoch
        self.last_saved: tuple[int, int] | None = None  # (step, epoch) of the last checkpoint written or resumed
        self.last_checkpoint: Path | None = None
        self.rng = capture_rng()  # RNG states right after the last completed update (what a checkpoint stores)
        self.dirty = False  # True while an optimizer step has changed the weights but not the step count yet
        self.history: list[dict[str, float]] = []  # what task.validate returned, in order

    # ----------------------------------------------------------------- records and checkpoints
    def open_loggers(self) -> None:
        """Open the run's metric writers (after :meth:`resume`: they drop records after the resumed step)."""
        self.run_log = RunLog(self.out_dir, self.cfg, is_main=self.info.is_main, resume_step=self.state.step)

    def log(self, record: dict[str, Any]) -> None:
        """Write one record (main rank only)."""
        if self.run_log is not None:
            self.run_log.log(record)

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
        state = training_state(self, gather=gather)
        if self.info.is_main:
            self.last_checkpoint = self.ckpt.save(
                step=self.state.step,
                weights=self.model.state_dict(),
                state=state,
                metadata={**_metadata(self.model, self.task), "vitzoo.epoch": str(self.state.epoch)},
            )
            log.info("checkpoint: %s", self.last_checkpoint)
        else:  # the file rank 0 writes (every rank reports the same checkpoint)
            self.last_checkpoint = self.ckpt.paths(self.state.step)[1]
        self.last_saved = (self.state.step, self.state.epoch)

    def resume(self, source: bool | str | os.PathLike) -> None:
        """Continue from a checkpoint (:func:`vitzoo.train.resume.resume`)."""
        resume_run(self, source)

    # ----------------------------------------------------------------- training
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
            step_values, self.metric_names = step_vector(out.loss, out.metrics, self.device, self.metric_names)
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
        self.history.append(result)
        self.log({"kind": "val", "step": s.step, "epoch": s.epoch, **result, "time": time.time()})
        log.info(
            "epoch %d step %d validation: %s", s.epoch, s.step, ", ".join(f"{k} {v:.4g}" for k, v in result.items())
        )
        value = float(result[task.monitor])
        if is_better(value, s.best_value, higher_is_better=task.higher_is_better):
            s.best_value, s.best_step = value, s.step
            if self.info.is_main:
                meta = {**_metadata(target, task), "vitzoo.step": str(s.step), f"vitzoo.{task.monitor}": repr(value)}
                self.ckpt.save_best(target.state_dict(), meta)
        return result

    def log_window(self, window: MetricWindow, bar) -> None:
        """Close the window (means over its updates and the ranks), add them to the epoch sums, log a record."""
        s = self.state
        closed = window.close(self.info.world_size)
        values = dict(closed.values)
        s.loss = values.pop("loss")
        s.metrics = values
        for name, mean in closed.values.items():
            s.epoch_sums[name] = s.epoch_sums.get(name, 0.0) + mean * closed.updates
        rate = closed.samples_per_s
        bar.set_postfix(loss=f"{s.loss:.4f}", lr=f"{s.lr:.2e}", samples_s=f"{rate:.1f}")
        epoch = s.epoch + s.update_in_epoch / self.updates_per_epoch
        record = {"kind": "train", "step": s.step, "epoch": epoch, "loss": s.loss, "lr": s.lr, "samples_per_s": rate}
        self.log({**record, **values, "time": time.time()})

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
            bar = progress_bar(
                enabled=cfg.progress and self.info.is_main,
                total=self.updates_per_epoch,
                initial=s.update_in_epoch,
                desc=f"epoch {epoch + 1}/{cfg.epochs}",
                unit="step",
                dynamic_ncols=True,
            )
            window = None
            reason = None
            started = time.perf_counter()
            while s.update_in_epoch < self.updates_per_epoch:
                values, samples = self.update(batches)
                if window is None:  # the metric names are known after the first update, which it counts
                    window = MetricWindow(self.device, self.metric_names, start=started)
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


def _step_zero_only(engine: Engine) -> bool:
    """True when ``out_dir`` holds checkpoints and all of them are at step 0 (a run stopped before its first
    update, by an earlier version or a signal): nothing was learnt, so a fresh start sets them aside (main rank)
    instead of refusing."""
    found = engine.ckpt.list()
    if not found or any(step > 0 for step, _ in found):
        return False
    if engine.info.is_main:
        files = [p for _, state in found for p in (state, engine.ckpt.weights_path_for(state))]
        engine.ckpt.set_aside(files, "a checkpoint before the first update: nothing to resume; starting afresh")
    return True


def _train(engine: Engine, *, resume: bool | str | os.PathLike, run_config: Any) -> FitResult:
    """The part of :func:`fit_task` that runs under the run directory's lock."""
    cfg, out_dir = engine.cfg, engine.out_dir
    if resume:
        engine.resume(resume)
    elif engine.ckpt.latest() is not None and not _step_zero_only(engine):
        raise OutputExistsError(
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
        # Nor before the first update: a step-0 checkpoint holds nothing to resume, and would block a fresh start.
        saveable = engine.state.step > 0 and not engine.saved and not engine.dirty
        if saveable and not isinstance(exc, CheckpointWriteError):
            try:
                engine.save(gather=not engine.info.enabled)
            except Exception as save_error:  # never hide the original error
                log.error("could not write a checkpoint after the error: %s", save_error)
        raise
    finally:
        if engine.run_log is not None:
            engine.run_log.close()
        records = engine.run_log.records() if engine.run_log is not None else []
        if cfg.plot and records:
            try:
                plot_training_curves(records, out_dir / "training_curves.png")
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
        best_step=s.best_step,
        history=engine.history,
    )
