"""Exact resume: what a checkpoint stores besides the weights, and how a run picks up from it.

:func:`training_state` is everything the rest of the run depends on (optimizer, scheduler, EMA, the task's other
modules, every rank's RNG states, the loader's generator, the position in the epoch, the best monitored value);
:func:`resume` loads the newest checkpoint that reads back (or the one named) into an
:class:`~vitzoo.train.engine.Engine` and makes the checkpoint folder agree with it:

* the run record (:func:`run_record`): what a resume must not change (the task and its options, the model's name
  and config, so its input shape and class count, the optimiser kind) is stored in every checkpoint; a resume
  that changes any of it raises :class:`ConfigError` listing every difference; checkpoints written before the
  record existed resume with a logged note;
* compatibility: another epoch length raises :class:`ConfigError`; each changed training option is logged on one
  line (as a warning when it changes the result: all but :data:`FREE_ON_RESUME`);
* stale best: a ``best.safetensors`` that is damaged, or was chosen after the step resumed from, no longer stands
  for the saved best value: it is set aside and chosen again at the next validation;
* old states: :func:`upgrade_state` reads state files written before tasks existed.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from vitzoo.checkpoints.io import ARCH_KEY, CONFIG_KEY, model_metadata, read_metadata
from vitzoo.checkpoints.load import load_checked
from vitzoo.durable import DamagedFileError, check_safetensors
from vitzoo.errors import VitzooError
from vitzoo.schema import ConfigError
from vitzoo.train.checkpointing import BEST_NAME, capture_rng, restore_rng, seed_everything
from vitzoo.train.config import TrainConfig
from vitzoo.train.distributed import barrier, gather_objects

log = logging.getLogger(__name__)

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

# State files written before tasks existed trained classifiers only, and chose their best weights by top-1.
PRE_TASK_MONITOR = "top1"


def training_state(engine: Any, *, gather: bool = True) -> dict[str, Any]:
    """Everything of ``engine`` (an :class:`~vitzoo.train.engine.Engine`) but the weights of ``task.model``;
    ``gather=False`` stores only this rank's RNG (no collective)."""
    s = engine.state
    rng = gather_objects(engine.rng) if gather else [engine.rng]
    # the loader generator as it was before this epoch's iter() (which draws the worker base seed)
    generator = engine.generator_state if s.update_in_epoch > 0 else engine.loader.generator.get_state()
    return {
        "step": s.step,
        "epoch": s.epoch,
        "update_in_epoch": s.update_in_epoch,
        "updates_per_epoch": engine.updates_per_epoch,
        "world_size": engine.info.world_size,
        "monitor": s.monitor,
        "best_value": s.best_value,
        "best_step": s.best_step,
        "epoch_sums": dict(s.epoch_sums),
        "optimizer": engine.optimizer.state_dict(),
        "scheduler": engine.scheduler.state_dict(),
        "ema": engine.ema.module.state_dict() if engine.ema is not None else None,
        "task": engine.task.extra_state_dict(),
        "rng": rng,
        "loader_generator": generator,
        "train_config": json.dumps(engine.cfg.__dict__, default=list),
        "run_record": json.dumps(run_record(engine)),
    }


def _flat(prefix: str, value: Any) -> dict[str, Any]:
    """``{"a.b": 1}`` for ``prefix="a", value={"b": 1}``: nested mappings as dotted names, values as JSON has them."""
    if isinstance(value, dict):
        names = {key: f"{prefix}.{key}" if prefix else key for key in value}
        return {k: v for key, item in value.items() for k, v in _flat(names[key], item).items()}
    return {prefix: json.loads(json.dumps(value, default=list))}


def run_record(engine: Any) -> dict[str, Any]:
    """What a resume of ``engine``'s run must not change, as flat ``{name: JSON value}``: the task's
    :attr:`~vitzoo.train.task.Task.run_record` (its name and options), the model's architecture name and config
    (its input size, frames and class count among them; the class name for a model without vitzoo config) and the
    optimiser's kind."""
    record = _flat("", dict(getattr(engine.task, "run_record", {"task": type(engine.task).__name__})))
    model = engine.model
    if hasattr(model, "cfg"):
        meta = model_metadata(model)
        record["model.name"] = meta[ARCH_KEY]
        config = json.loads(meta[CONFIG_KEY])  # {"class": ..., "fields": {...}}
        record["model.config"] = config.get("class")
        record.update(_flat("model", config.get("fields", {})))
    else:
        record["model"] = type(model).__name__
    record["optimizer"] = type(engine.optimizer).__name__
    return record


def check_record(engine: Any, path: Path, saved: dict[str, Any]) -> None:
    """:class:`ConfigError` listing every entry of :func:`run_record` that differs from the checkpoint's (a
    checkpoint written before the record existed is taken as it is, with a logged note)."""
    if "run_record" not in saved:
        log.info("%s predates the run record: the task, model and optimiser are not compared with it", path)
        return
    before, now = json.loads(saved["run_record"]), run_record(engine)

    def shown(record: dict[str, Any], name: str) -> str:
        return repr(record[name]) if name in record else "(unset)"

    changed = [
        f"{name} {shown(before, name)} -> {shown(now, name)}"
        for name in sorted(set(before) | set(now))
        if name not in before or name not in now or before[name] != now[name]
    ]
    if changed:
        raise ConfigError(
            f"cannot resume from {path}: the run's recipe changed ({'; '.join(changed)}); restore these values, or "
            "start a new run in another output_dir (for fine-tuning from it: model.pretrained)"
        )


def changed_options(saved: dict[str, Any], cfg: TrainConfig, *, free: bool = False) -> dict[str, tuple[Any, Any]]:
    """``{name: (saved value, current value)}`` for the options that differ and matter for the result (``free``:
    those that differ and do not, :data:`FREE_ON_RESUME`).

    Only today's options are compared: a saved option that no longer exists (the classification options that
    older ``train_config`` entries hold, now ``task.options``) is not one of them.
    """
    current = json.loads(json.dumps(cfg.__dict__, default=list))
    return {k: (saved.get(k), v) for k, v in current.items() if (k in FREE_ON_RESUME) == free and saved.get(k, v) != v}


def upgrade_state(saved: dict[str, Any]) -> dict[str, Any]:
    """A state file written before tasks in today's terms: its best top-1 becomes the best value of the
    :data:`PRE_TASK_MONITOR` monitor, its epoch loss sum the epoch sums, and it has no task state."""
    if "monitor" in saved:
        return saved
    found = saved["best_step"] >= 0
    return {
        **saved,
        "monitor": PRE_TASK_MONITOR,
        "best_value": saved["best_top1"] if found else None,
        "epoch_sums": {"loss": saved["epoch_loss_sum"]} if saved["update_in_epoch"] else {},
        "task": {},
    }


def read_checkpoint(engine: Any, source: bool | str | os.PathLike) -> tuple[Path, dict, dict[str, Any]]:
    """``(state path, weights, upgraded state)`` of the newest checkpoint that reads back (``source=True``) or of
    the one named (its state or weights file)."""
    if source is True:
        path, weights, saved = engine.ckpt.load_latest()
    else:
        path = Path(source)
        if path.suffix == ".safetensors":
            path = path.with_name(path.name.replace(".safetensors", ".state.pt"))
        weights, saved = engine.ckpt.load(path)
    return path, weights, upgrade_state(saved)


def check_compatible(engine: Any, path: Path, saved: dict[str, Any]) -> None:
    """:func:`check_record`; log each changed training option on one line (a warning for those that change the
    result); :class:`ConfigError` when the epoch length differs (other data or batch)."""
    check_record(engine, path, saved)
    options = json.loads(saved["train_config"])
    for name, (before, now) in changed_options(options, engine.cfg, free=True).items():
        log.info("resuming with train.%s %r (was %r)", name, now, before)
    for name, (before, now) in changed_options(options, engine.cfg).items():
        log.warning(
            "resuming with changed option train.%s %r (was %r): the optimizer and lr schedule continue as saved, "
            "so the run will not match an uninterrupted one",
            name,
            now,
            before,
        )
    if saved["updates_per_epoch"] != engine.updates_per_epoch:
        raise ConfigError(
            f"cannot resume from {path}: it has {saved['updates_per_epoch']} updates per epoch, this run "
            f"{engine.updates_per_epoch} (dataset size, batch_size, accum_steps and process count must match)"
        )


def load_modules(engine: Any, path: Path, weights: dict, saved: dict[str, Any]) -> None:
    """The weights, the task's other modules, optimizer, scheduler and EMA of the checkpoint into ``engine``."""
    model = engine.model
    try:
        if hasattr(model, "cfg"):
            load_checked(model, weights, source=str(path))
        else:
            model.load_state_dict(weights, strict=True)
        engine.task.load_extra_state_dict(saved["task"])
    except (VitzooError, RuntimeError) as exc:  # another model or task (torch's load_state_dict raises RuntimeError)
        raise ConfigError(f"cannot resume from {path}: {str(exc).splitlines()[0]}") from exc
    engine.optimizer.load_state_dict(saved["optimizer"])
    engine.scheduler.load_state_dict(saved["scheduler"])
    if engine.ema is not None:
        if saved["ema"] is None:
            log.warning("the checkpoint has no EMA weights; the EMA restarts from the loaded weights")
            engine.ema.module.load_state_dict(model.state_dict())
        else:
            engine.ema.module.load_state_dict(saved["ema"])


def load_position(engine: Any, saved: dict[str, Any]) -> None:
    """RNG states, loader generator, step/epoch position, epoch sums and best value of the checkpoint."""
    info, s = engine.info, engine.state
    rngs = saved["rng"]
    if saved["world_size"] == info.world_size and info.rank < len(rngs):
        restore_rng(rngs[info.rank])
    else:
        log.warning("no saved RNG state for rank %d; reseeding (the run is no longer bitwise reproducible)", info.rank)
        seed_everything(engine.cfg.seed + info.rank + saved["step"])
    engine.loader.generator.set_state(saved["loader_generator"])
    engine.generator_state = saved["loader_generator"]
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
    engine.scheduler.step_update(s.step)
    engine.task.resume_at(s.step, s.total_steps)  # what the task derives from the step (BYOL's momentum)
    engine.rng = capture_rng()


def stale_best(engine: Any) -> str | None:
    """Why ``best.safetensors`` cannot stand for the resumed state's best value (damaged, or chosen after the
    step resumed from, so the file the state refers to was replaced), or None."""
    best = engine.ckpt.best_path
    if not best.is_file():
        return None
    try:
        check_safetensors(best)
        best_step = int(read_metadata(best).get("vitzoo.step", -1))
    except (DamagedFileError, ValueError) as exc:
        return f"damaged ({exc})"
    step = engine.state.step
    return f"chosen at step {best_step}, after step {step}" if best_step > step else None


def tidy_after_resume(engine: Any, stale: str | None) -> None:
    """Make the checkpoint folder agree with the resumed position (main rank; it holds the run's lock).

    Checkpoints after the resumed step (unreadable ones, or a future the resume abandons) and a stale
    ``best.safetensors`` (:func:`stale_best`) go to ``set_aside/``; what an interrupted save left is removed.
    """
    step, ckpt = engine.state.step, engine.ckpt
    ckpt.set_aside(ckpt.newer_than(step), f"written after step {step}, the step resumed from")
    if stale is not None:
        ckpt.set_aside([ckpt.best_path], stale)
    ckpt.clean()


def resume(engine: Any, source: bool | str | os.PathLike) -> None:
    """Continue ``engine``'s run from the newest checkpoint that reads back (``source=True``) or the one named.

    Unreadable newer checkpoints (``source=True``) and every checkpoint after the one resumed from are moved to
    ``checkpoints/set_aside/``, so pruning never keeps them in place of good ones; a checkpoint that does not
    fit this run (another model, dataset size, batch size) raises :class:`ConfigError`.
    """
    path, weights, saved = read_checkpoint(engine, source)
    check_compatible(engine, path, saved)
    load_modules(engine, path, weights, saved)
    load_position(engine, saved)
    s = engine.state
    engine.last_saved = (s.step, s.epoch)
    engine.last_checkpoint = path
    stale = stale_best(engine)  # read by every rank, so that all of them forget the same best value
    if stale is not None:
        if s.best_value is not None:
            log.warning("%s is %s: the best weights are chosen again at the next validation", BEST_NAME, stale)
        s.best_value, s.best_step = None, -1
    barrier()  # every rank has read its files before the main rank moves any
    if engine.info.is_main:
        tidy_after_resume(engine, stale)
    log.info("resumed from %s: step %d, epoch %d (+%d updates)", path, s.step, s.epoch, s.update_in_epoch)
    if s.epoch >= engine.cfg.epochs:
        log.info("the run is already complete (%d epochs): nothing to train", engine.cfg.epochs)
