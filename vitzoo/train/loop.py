"""``fit``: the fine-tuning loop (single process, or DDP under ``torchrun``) with exact resume.

One optimizer update consumes ``accum_steps`` micro-batches. Per update: forward under optional bf16
autocast, loss (cross-entropy with label smoothing, or soft-target cross-entropy after Mixup/CutMix),
backward (DDP gradient sync only on the last micro-batch), gradient clipping, AdamW step, then the
scheduler (``step_update``) and the EMA. Rank 0 logs ``metrics.jsonl``, draws the progress bar and writes
checkpoints; every rank takes part in evaluation.

Exact resume: a checkpoint holds everything the rest of the run depends on (weights, optimizer,
scheduler, EMA, every rank's RNG states, the loader's generator and the position in the epoch), and the
training loader's order depends only on ``(seed, epoch)``. So a run stopped after ``k`` updates and
resumed ends with the same weights as an uninterrupted one (bitwise on CPU with ``num_workers=0``;
``tests/train/test_resume.py``). A checkpoint is written at every epoch end, every ``save_every``
updates, on ``max_steps``, on Ctrl-C/SIGTERM (after the running update) and when an exception escapes
the loop (if the last update completed).
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
from timm.loss import SoftTargetCrossEntropy
from timm.utils import ModelEmaV3
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from vitzoo.checkpoints.io import model_metadata
from vitzoo.checkpoints.load import load_checked
from vitzoo.train.checkpointing import CheckpointManager, capture_rng, restore_rng, seed_everything
from vitzoo.train.config import ConfigError, TrainConfig, dump_yaml, train_config
from vitzoo.train.distributed import DistInfo, all_reduce, any_rank, default_device, gather_objects, init_distributed
from vitzoo.train.eval import EvalResult, evaluate
from vitzoo.train.interrupt import GracefulStop
from vitzoo.train.loader import train_loader
from vitzoo.train.metrics import MetricsLogger
from vitzoo.train.optim import build_optimizer, build_scheduler
from vitzoo.train.plots import plot_training_curves

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
    best_top1: float = -1.0
    best_step: int = -1
    epoch_loss_sum: float = 0.0  # sum of update losses in the current epoch
    stop: bool = False


@dataclass
class FitResult:
    """What :func:`fit` leaves behind."""

    out_dir: Path
    step: int
    epoch: int
    completed: bool  # all epochs done (False after max_steps or an interrupt)
    interrupted: bool  # stopped by Ctrl-C / SIGTERM
    last_checkpoint: Path | None  # state file of the last checkpoint (its weights sit next to it)
    best_checkpoint: Path | None  # best.safetensors, when there was a validation set
    best_top1: float | None
    evaluations: list[EvalResult] = field(default_factory=list)


class _Window:
    """Sum of update losses, clips and updates since the last metrics line."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset()

    def reset(self) -> None:
        """Start a new window now."""
        self.loss = torch.zeros((), device=self.device)
        self.clips = self.updates = 0
        self.start = time.perf_counter()

    def add(self, loss: torch.Tensor, clips: int) -> None:
        """Count one update (its mean loss stays on the device: no synchronisation here)."""
        self.loss += loss
        self.clips += clips
        self.updates += 1


def _metadata(model: nn.Module) -> dict[str, str]:
    """vitzoo's model metadata (name + config) when the model has a config, else none."""
    return model_metadata(model) if hasattr(model, "cfg") else {}


class _Run:
    """The state and parts of one :func:`fit` call (kept together so the loop reads top to bottom)."""

    def __init__(self, model, train_set, val_set, cfg: TrainConfig, out_dir: Path, callbacks, classes) -> None:
        self.cfg = cfg
        self.out_dir = out_dir
        self.callbacks = list(callbacks)
        self.classes = classes
        self.val_set = val_set
        self.info: DistInfo = init_distributed()
        self.device = default_device(self.info, cfg.device)
        seed_everything(cfg.seed + self.info.rank)
        self.module = model.to(self.device)
        if cfg.grad_checkpointing:
            if not hasattr(self.module, "set_grad_checkpointing"):
                name = type(self.module).__name__
                raise TypeError(f"{name} has no set_grad_checkpointing(); set grad_checkpointing=False")
            self.module.set_grad_checkpointing(True)
        self.optimizer = build_optimizer(self.module, cfg)
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
                f"one update needs {cfg.accum_steps} batches of {cfg.batch_size} clips per process, but the "
                f"training set gives {batches} batches per process ({len(train_set)} clips, {self.info.world_size} "
                "processes); lower batch_size or accum_steps"
            )
        if batches % cfg.accum_steps:
            log.info("%d batches per epoch not used (not a multiple of accum_steps)", batches % cfg.accum_steps)
        self.scheduler, total = build_scheduler(self.optimizer, cfg, updates_per_epoch=self.updates_per_epoch)
        self.ema = ModelEmaV3(self.module, decay=cfg.ema_decay) if cfg.ema_decay is not None else None
        self.model = self.module
        if self.info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.module, device_ids=ids)
        if cfg.mixup_alpha > 0 or cfg.cutmix_alpha > 0:
            from vitzoo.data.mixup import make_mixup

            self.mixup = make_mixup(
                num_classes=_num_classes(self.module),
                mixup_alpha=cfg.mixup_alpha,
                cutmix_alpha=cfg.cutmix_alpha,
                label_smoothing=cfg.label_smoothing,
            )
            self.criterion: nn.Module = SoftTargetCrossEntropy()
        else:
            self.mixup = None
            self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.ckpt = CheckpointManager(out_dir / "checkpoints", keep_last=cfg.keep_last)
        self.metrics = MetricsLogger(out_dir, csv=cfg.csv) if self.info.is_main else None
        self.state = TrainState(updates_per_epoch=self.updates_per_epoch, total_steps=total)
        self.generator_state = self.loader.generator.get_state()  # at the start of the current epoch
        self.last_saved_step = -1
        self.last_checkpoint: Path | None = None
        self.rng = capture_rng()  # RNG states right after the last completed update (what a checkpoint stores)
        self.dirty = False  # True while an optimizer step has changed the weights but not the step count yet
        self.evaluations: list[EvalResult] = []

    # ----------------------------------------------------------------------------- checkpoints
    def state_dict(self, *, gather: bool = True) -> dict[str, Any]:
        """Everything but the weights; ``gather=False`` stores only this rank's RNG (no collective)."""
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
            "best_top1": s.best_top1,
            "best_step": s.best_step,
            "epoch_loss_sum": s.epoch_loss_sum,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": self.ema.module.state_dict() if self.ema is not None else None,
            "rng": rng,
            "loader_generator": generator,
            "train_config": json.dumps(self.cfg.__dict__, default=list),
        }

    def save(self, *, gather: bool = True) -> None:
        """Write a checkpoint at the current step (rank 0 writes; all ranks take part in the RNG gather)."""
        if self.state.step == self.last_saved_step:
            return
        state = self.state_dict(gather=gather)
        if self.info.is_main:
            self.last_checkpoint = self.ckpt.save(
                step=self.state.step,
                weights=self.module.state_dict(),
                state=state,
                metadata={**_metadata(self.module), "vitzoo.epoch": str(self.state.epoch)},
            )
            log.info("checkpoint: %s", self.last_checkpoint)
        self.last_saved_step = self.state.step

    def resume(self, source: bool | str | os.PathLike) -> None:
        """Load the latest checkpoint (``source=True``) or the one named (its state or weights file)."""
        if source is True:
            path = self.ckpt.latest()
            if path is None:
                raise FileNotFoundError(f"resume: no complete checkpoint in {self.ckpt.directory}")
        else:
            path = Path(source)
            if path.suffix == ".safetensors":
                path = path.with_name(path.name.replace(".safetensors", ".state.pt"))
        weights, saved = self.ckpt.load(path)
        changed = _changed_options(json.loads(saved["train_config"]), self.cfg)
        if changed:
            log.warning(
                "resuming with changed options %s: the optimizer and lr schedule continue as saved, so the run will "
                "not match an uninterrupted one",
                changed,
            )
        if saved["updates_per_epoch"] != self.updates_per_epoch:
            raise ValueError(
                f"cannot resume from {path}: it has {saved['updates_per_epoch']} updates per epoch, this run "
                f"{self.updates_per_epoch} (dataset size, batch_size, accum_steps and process count must match)"
            )
        if hasattr(self.module, "cfg"):
            load_checked(self.module, weights, source=str(path))
        else:
            self.module.load_state_dict(weights, strict=True)
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        if self.ema is not None:
            if saved["ema"] is None:
                log.warning("the checkpoint has no EMA weights; the EMA restarts from the loaded weights")
                self.ema.module.load_state_dict(self.module.state_dict())
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
        s.best_top1, s.best_step, s.epoch_loss_sum = saved["best_top1"], saved["best_step"], saved["epoch_loss_sum"]
        self.scheduler.step_update(s.step)
        self.rng = capture_rng()
        self.last_saved_step = s.step
        self.last_checkpoint = path
        if self.metrics is not None:
            self.metrics.truncate_after(s.step)
        log.info("resumed from %s: step %d, epoch %d (+%d updates)", path, s.step, s.epoch, s.update_in_epoch)

    # ----------------------------------------------------------------------------- training
    def update(self, batches) -> tuple[torch.Tensor, int]:
        """One optimizer update over ``accum_steps`` micro-batches, then the step count, scheduler and EMA.

        Returns (mean loss tensor, clips used).
        """
        cfg = self.cfg
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum = torch.zeros((), device=self.device)
        clips_used = 0
        for micro in range(cfg.accum_steps):
            batch = next(batches)
            clips, labels = batch[0].to(self.device, non_blocking=True), batch[1].to(self.device, non_blocking=True)
            targets = labels
            if self.mixup is not None:
                clips, targets = self.mixup(clips, labels)
            last = micro == cfg.accum_steps - 1
            sync = contextlib.nullcontext() if last or not self.info.enabled else self.model.no_sync()
            with sync:
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16"):
                    logits = self.model(clips)
                loss = self.criterion(logits.float(), targets)
                (loss / cfg.accum_steps).backward()
            loss_sum += loss.detach()
            clips_used += clips.shape[0]
        if cfg.clip_grad is not None:
            nn.utils.clip_grad_norm_(self.module.parameters(), cfg.clip_grad)
        self.dirty = True
        self.optimizer.step()
        s = self.state
        s.lr = self.optimizer.param_groups[-1]["lr"]
        s.step += 1
        s.update_in_epoch += 1
        self.scheduler.step_update(s.step)
        if self.ema is not None:
            self.ema.update(self.module, step=s.step)
        self.rng = capture_rng()
        self.dirty = False
        return loss_sum / cfg.accum_steps, clips_used

    def evaluate(self) -> EvalResult:
        """Validate the EMA weights (if any, else the model); keep ``best.safetensors`` on improvement."""
        cfg, s = self.cfg, self.state
        target = self.ema.module if self.ema is not None else self.module
        result = evaluate(
            target,
            self.val_set,
            batch_size=cfg.eval_batch_size or cfg.batch_size,
            num_workers=cfg.num_workers,
            device=self.device,
            amp=cfg.amp,
            average=cfg.eval_average,
            classes=self.classes,
            out_dir=self.out_dir / "eval" / f"step_{s.step:08d}",
            progress=cfg.progress,
        )
        self.evaluations.append(result)
        if self.metrics is not None:
            self.metrics.log(
                {
                    "kind": "val",
                    "step": s.step,
                    "epoch": s.epoch,
                    "top1": result.top1,
                    "top5": result.top5,
                    "loss": result.loss,
                    "num_samples": result.num_samples,
                    "time": time.time(),
                }
            )
        log.info("epoch %d step %d validation: %s", s.epoch, s.step, result)
        if result.top1 > s.best_top1:
            s.best_top1, s.best_step = result.top1, s.step
            if self.info.is_main:
                meta = {**_metadata(target), "vitzoo.step": str(s.step), "vitzoo.top1": f"{result.top1:.6f}"}
                self.ckpt.save_best(target.state_dict(), meta)
        return result

    def log_window(self, window: _Window, bar: tqdm) -> None:
        """Average the window's loss over updates and ranks, add it to the epoch sum, log a line, reset the window."""
        s, world = self.state, self.info.world_size
        s.loss = float(all_reduce(window.loss / window.updates) / world)
        s.epoch_loss_sum += s.loss * window.updates
        rate = window.clips * world / max(time.perf_counter() - window.start, 1e-9)
        bar.set_postfix(loss=f"{s.loss:.4f}", lr=f"{s.lr:.2e}", clips_s=f"{rate:.1f}")
        if self.metrics is not None:
            epoch = s.epoch + s.update_in_epoch / self.updates_per_epoch
            self.metrics.log(
                {
                    "kind": "train",
                    "step": s.step,
                    "epoch": epoch,
                    "loss": s.loss,
                    "lr": s.lr,
                    "clips_per_s": rate,
                    "time": time.time(),
                }
            )
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
                s.epoch_loss_sum = 0.0
                self.generator_state = self.loader.generator.get_state()
            else:  # resuming mid-epoch: same generator state and order as the interrupted pass
                self.loader.generator.set_state(self.generator_state)
            self.sampler.set_epoch(epoch)
            self.sampler.skip_next(s.update_in_epoch * cfg.accum_steps * cfg.batch_size)
            self.model.train()
            batches = iter(self.loader)
            bar = tqdm(
                total=self.updates_per_epoch,
                initial=s.update_in_epoch,
                desc=f"epoch {epoch + 1}/{cfg.epochs}",
                unit="step",
                disable=not (cfg.progress and self.info.is_main),
                dynamic_ncols=True,
            )
            window = _Window(self.device)
            reason = None
            while s.update_in_epoch < self.updates_per_epoch:
                loss, clips = self.update(batches)
                window.add(loss, clips)
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
            if self.metrics is not None:
                self.metrics.log(
                    {
                        "kind": "epoch",
                        "step": s.step,
                        "epoch": s.epoch,
                        "loss": s.epoch_loss_sum / self.updates_per_epoch,
                        "time": time.time(),
                    }
                )
            due = cfg.eval_every and (s.epoch % cfg.eval_every == 0 or s.epoch == cfg.epochs)
            if self.val_set is not None and due:
                self.evaluate()
            s.epoch_loss_sum = 0.0
            self.save()
        return "completed"


# Options that may differ between a run and its resumption without changing what is computed.
FREE_ON_RESUME = frozenset(
    {
        "max_steps",
        "progress",
        "plot",
        "csv",
        "log_every",
        "num_workers",
        "eval_every",
        "eval_batch_size",
        "keep_last",
        "save_every",
        "device",
    }
)


def _changed_options(saved: dict[str, Any], cfg: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """``{name: (saved value, current value)}`` for the options that differ and matter for the result."""
    current = json.loads(json.dumps(cfg.__dict__, default=list))
    return {k: (saved.get(k), v) for k, v in current.items() if k not in FREE_ON_RESUME and saved.get(k, v) != v}


def _num_classes(model: nn.Module) -> int:
    cfg = getattr(model, "cfg", None)
    if cfg is None or not getattr(cfg, "num_classes", 0):
        raise ValueError("Mixup/CutMix needs the class count: use a vitzoo model with num_classes > 0")
    return cfg.num_classes


def fit(
    model: nn.Module,
    train_set: Dataset,
    *,
    out_dir: str | os.PathLike,
    val_set: Dataset | None = None,
    config: TrainConfig | None = None,
    resume: bool | str | os.PathLike = False,
    callbacks: Sequence[Callable[[TrainState], None]] = (),
    classes: Sequence[str] | None = None,
    run_config: Any = None,
    **options: Any,
) -> FitResult:
    """Fine-tune ``model`` on ``train_set``; evaluate on ``val_set``; write logs, plots and checkpoints to ``out_dir``.

    Args:
        model: a classifier taking batches of clips (a vitzoo model, or any ``nn.Module``); moved to the device.
        train_set: map-style dataset of ``(clip, label)`` (``clip`` ``(C, T, H, W)`` float). Loaded with
            ``vitzoo.data.make_loader`` (shuffled per epoch from ``seed``, sharded under ``torchrun``).
        out_dir: run directory: ``metrics.jsonl`` (+ ``.csv``), ``training_curves.png``, ``checkpoints/``
            (``step_*.safetensors`` + ``step_*.state.pt``, ``best.safetensors``), ``eval/step_*/``
            (``eval.json``, ``confusion_matrix.png``), ``train_config.yaml``.
        val_set: dataset of ``(views, label)`` with views ``(V, C, T, H, W)`` or ``(C, T, H, W)``, evaluated every
            ``eval_every`` epochs (see :func:`vitzoo.train.evaluate`).
        config: a :class:`TrainConfig`; ``options`` replace its fields (``fit(..., epochs=3, lr=1e-3)``), unknown
            names raise :class:`vitzoo.train.ConfigError` with close matches.
        resume: ``True`` continues from the latest checkpoint in ``out_dir`` (an error if there is none), a path
            from that checkpoint; ``False`` starts afresh and refuses an ``out_dir`` that already has checkpoints.
        callbacks: called with the :class:`TrainState` after every update, on every rank; setting
            ``state.stop = True`` ends training after a checkpoint. An exception raised by a callback is
            re-raised after a checkpoint is written.
        classes: class names for reports (default: ``val_set.classes`` when present).
        run_config: the full recipe (any dataclass), saved as ``config.yaml`` next to the metrics.

    Returns:
        a :class:`FitResult`. After Ctrl-C / SIGTERM it returns normally with ``interrupted=True`` once
        the checkpoint is written (a second Ctrl-C aborts at once).
    """
    if isinstance(train_set, DataLoader) or isinstance(val_set, DataLoader):
        raise TypeError("fit takes datasets, not DataLoaders: it builds its own (seeded, resumable, sharded) loaders")
    cfg = train_config(config, **options)
    out_dir = Path(out_dir)
    if classes is None:
        classes = getattr(val_set, "classes", None) or getattr(train_set, "classes", None)
    run = _Run(model, train_set, val_set, cfg, out_dir, callbacks, classes)
    if resume:
        run.resume(resume)
    elif run.ckpt.latest() is not None:
        raise FileExistsError(
            f"{out_dir} already holds checkpoints; resume=True (--resume) continues that run, or choose another out_dir"
        )
    if run.info.is_main:
        dump_yaml(cfg, out_dir / "train_config.yaml")
        if run_config is not None:
            dump_yaml(run_config, out_dir / "config.yaml")
    reason = "exception"
    try:
        with GracefulStop() as stopper:
            reason = run.run(stopper)
    except BaseException:
        # Unless the error hit between an optimizer step and the step count (run.dirty), the weights, optimizer
        # and run.rng are those of update run.state.step: save them, without collectives (other ranks may be gone).
        if run.last_saved_step != run.state.step and not run.dirty:
            try:
                run.save(gather=not run.info.enabled)
            except Exception:  # never hide the original error
                log.exception("could not write a checkpoint after the error")
        raise
    finally:
        if run.info.is_main and cfg.plot and run.metrics is not None and run.metrics.records():
            plot_training_curves(run.metrics.records(), out_dir / "training_curves.png")
    best = run.ckpt.directory / "best.safetensors"
    return FitResult(
        out_dir=out_dir,
        step=run.state.step,
        epoch=run.state.epoch,
        completed=reason == "completed",
        interrupted=reason == "signal",
        last_checkpoint=run.last_checkpoint,
        best_checkpoint=best if best.is_file() else None,
        best_top1=run.state.best_top1 if run.state.best_step >= 0 else None,
        evaluations=run.evaluations,
    )
