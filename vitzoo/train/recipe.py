"""From a YAML recipe to a trained or evaluated model: what ``vitzoo train`` and ``vitzoo eval`` run.

:func:`load_run_config` reads a recipe into a :class:`RunConfig` and validates it, the task's section against
the task registry (:mod:`vitzoo.train.tasks`; the self-supervised tasks are there once ``vitzoo.ssl`` is
imported): the task's options, the class count the task needs, rules across the task's and the training options.
Old recipes' classification keys under ``train:`` are moved to ``task.options`` (:mod:`vitzoo.train.legacy`).

:func:`train_from_config` builds the model, the datasets (the task's own when it registered a builder for them,
else the labelled video datasets of :func:`vitzoo.data.build_datasets`), the task (``task.name`` in the
registry), and trains it with :func:`vitzoo.train.engine.fit_task`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import yaml
from torch import nn

from vitzoo.checkpoints.io import PREPROCESS_KEY
from vitzoo.data.preprocess import eval_settings
from vitzoo.data.recipe import build_datasets, dataset_num_classes, frame_sampler, split_dataset
from vitzoo.errors import InputNotFoundError
from vitzoo.schema import apply_overrides, build, to_dict
from vitzoo.train.checkpointing import CheckpointManager, check_weights_file, seed_everything
from vitzoo.train.config import ConfigError, ModelSpec, RunConfig
from vitzoo.train.engine import fit_task
from vitzoo.train.errors import CheckpointReadError
from vitzoo.train.eval import EvalResult, evaluate
from vitzoo.train.legacy import move_old_train_options, take_old_train_options
from vitzoo.train.state import FitResult
from vitzoo.train.tasks import TaskData, get_task
from vitzoo.train.tasks.classification import check_classes

log = logging.getLogger(__name__)

__all__ = [
    "build_datasets",  # vitzoo.data.build_datasets, where it lives now
    "build_model",
    "check_architecture",
    "check_run",
    "default_checkpoint",
    "evaluate_from_config",
    "frame_sampler",  # vitzoo.data.frame_sampler
    "load_run_config",
    "readable_weights",
    "resolve_num_classes",
    "split_dataset",  # vitzoo.data.split_dataset
    "task_data",
    "train_from_config",
]


def load_run_config(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a YAML recipe, apply ``key=value`` overrides, and return the validated :class:`RunConfig`
    (:func:`check_run`)."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"no config file {path}")
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping with model, data, task, train, output_dir")
    data, overrides, old = take_old_train_options(data, list(overrides))
    data = apply_overrides(data, overrides, RunConfig)
    try:
        run = build(RunConfig, data)
        move_old_train_options(run, old, get_task(run.task.name))
        check_run(run)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return run


def check_run(run: RunConfig) -> None:
    """Validate every section of a recipe: the task (registered, its options) first, then the model (with the
    head the task needs), the data and the training options, then the task's options against the training
    options (an options dataclass may define ``check_train(train)``, e.g. Mixup's even batch)."""
    entry = get_task(run.task.name)
    options = entry.parse_options(run.task.options)
    run.validate(needs_head=entry.needs_head)
    check_train = getattr(options, "check_train", None)
    if check_train is not None:
        check_train(run.train)


def build_model(spec: ModelSpec) -> nn.Module:
    """``vitzoo.create(spec.name, pretrained=..., num_classes=..., **spec.options)``."""
    from vitzoo.api import create

    return create(
        spec.name,
        pretrained=spec.pretrained,
        tubelet_init=spec.tubelet_init,
        num_classes=spec.num_classes,
        **spec.options,
    )


def task_data(run: RunConfig, model: nn.Module) -> TaskData:
    """The labelled video datasets of a recipe (:func:`vitzoo.data.build_datasets`) as :class:`TaskData`."""
    train_set, val_set = build_datasets(run.data, model)
    return TaskData(train=train_set, val=val_set, classes=getattr(train_set, "classes", None))


def resolve_num_classes(run: RunConfig, *, needs_head: bool) -> None:
    """``model.num_classes: null`` becomes the class count of the training set (0 for a task without a head)."""
    if run.model.num_classes is None:
        run.model.num_classes = dataset_num_classes(run.data) if needs_head else 0
        log.info("model.num_classes: %d, from the training set", run.model.num_classes)


def train_from_config(run: RunConfig, *, resume: bool | str | os.PathLike = False) -> FitResult:
    """Build the model, datasets and task of a recipe and train the task into ``run.output_dir``."""
    check_run(run)
    entry = get_task(run.task.name)
    resolve_num_classes(run, needs_head=entry.needs_head)
    seed_everything(run.train.seed)  # the same initial weights on every rank and every run
    model = build_model(run.model)
    data = (entry.datasets or task_data)(run, model)
    task = entry.build(run, model, data)
    options = entry.parse_options(run.task.options)  # with the defaults, so writing a default out is no change
    task.run_record = {"task": run.task.name, "task.options": to_dict(options) if options is not None else {}}
    if entry.datasets is None:  # the labelled video datasets: record how they are evaluated, for vitzoo predict
        task.checkpoint_metadata[PREPROCESS_KEY] = json.dumps(eval_settings(run.data))
    return fit_task(
        task,
        data.train,
        val_data=data.val,
        config=run.train,
        out_dir=run.output_dir,
        resume=resume,
        run_config=run,
    )


def default_checkpoint(run: RunConfig) -> Path:
    """``best.safetensors`` of the run, else the weights of its latest checkpoint."""
    ckpt = CheckpointManager(Path(run.output_dir) / "checkpoints")
    if ckpt.best_path.is_file():
        return ckpt.best_path
    latest = ckpt.latest()
    if latest is None:
        raise InputNotFoundError(f"no checkpoint in {ckpt.directory}; train first or pass --checkpoint")
    return CheckpointManager.weights_path_for(latest)


def readable_weights(run: RunConfig, path: Path) -> Path:
    """``path`` when it is a complete safetensors file; else :class:`CheckpointReadError` naming what is wrong with
    it and the newest step checkpoint of the run that is complete, to use instead."""
    try:
        check_weights_file(path)
    except CheckpointReadError as exc:
        ckpt = CheckpointManager(Path(run.output_dir) / "checkpoints")
        for _, state_path in reversed(ckpt.list()):
            candidate = CheckpointManager.weights_path_for(state_path)
            if candidate.resolve() == path.resolve():
                continue
            try:
                check_weights_file(candidate)
            except CheckpointReadError:
                continue
            raise CheckpointReadError(f"{exc}; evaluate another checkpoint, e.g. --checkpoint {candidate}") from None
        raise CheckpointReadError(f"{exc}; no other checkpoint of {ckpt.directory} is readable") from None
    return path


def check_architecture(run: RunConfig, path: Path, arch: str) -> None:
    """:class:`ConfigError` when a checkpoint holds another registered model than the recipe's ``model.name``.

    The evaluation would run (the model is rebuilt from the checkpoint), but under this recipe's name and output
    folder, with its data settings chosen for another model: nearly always the wrong recipe or the wrong file.
    """
    from vitzoo.registry import MODELS

    if not arch or not run.model.name:
        return
    try:
        same = MODELS.resolve(arch) == MODELS.resolve(run.model.name)
    except KeyError:  # a name this checkout does not register: compare as written
        same = arch == run.model.name
    if not same:
        raise ConfigError(
            f"{path} holds a {arch} model but the recipe trains {run.model.name}; pass the recipe of the run that "
            f"wrote it, or --set model.name={arch} to evaluate it with this recipe's data"
        )


def evaluate_from_config(
    run: RunConfig,
    *,
    checkpoint: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
) -> EvalResult:
    """Evaluate a checkpoint (default: :func:`default_checkpoint`) on the recipe's validation set.

    The model is rebuilt from the checkpoint's own metadata (``vitzoo.load``) and compiled when ``train.compile``
    is set (``vitzoo eval --compile``); results go to ``out_dir``
    (default ``<output_dir>/eval/<checkpoint name>``). Refused with one line: a damaged file (naming a readable
    checkpoint to use instead), a checkpoint of another model than the recipe's (:func:`check_architecture`), a
    class count that does not fit the validation set.
    """
    from vitzoo.api import load_classifier
    from vitzoo.checkpoints.io import ARCH_KEY, read_metadata
    from vitzoo.train.distributed import default_device, init_distributed

    if run.task.name != "classification":
        raise ConfigError(
            f"vitzoo eval evaluates classifiers; this recipe trains task {run.task.name!r} (for the frozen features "
            "of a self-supervised checkpoint: vitzoo knn, vitzoo linear-probe)"
        )
    if run.data.val is None:
        raise ConfigError("the recipe has no validation set (data.val is null); set one with --set data.val=...")
    path = Path(checkpoint) if checkpoint is not None else default_checkpoint(run)
    if path.suffix == ".safetensors":
        readable_weights(run, path)
        check_architecture(run, path, read_metadata(path).get(ARCH_KEY, ""))
    info = init_distributed(timeout_s=run.train.dist_timeout_s)
    device = default_device(info, run.train.device)
    model = load_classifier(path, command="vitzoo eval")
    _, val_set = build_datasets(run.data, model)
    check_classes(val_set, model.cfg.num_classes, "validation", fix=f"{path} was trained for another class list")
    out_dir = Path(out_dir) if out_dir is not None else Path(run.output_dir) / "eval" / path.stem
    model.to(device)
    if run.train.compile:
        model.compile()  # in place (torch.compile of the forward): the same module, its outputs to a tolerance
    result = evaluate(
        model,
        val_set,
        batch_size=run.train.eval_batch_size or run.train.batch_size,
        num_workers=run.train.num_workers,
        amp=run.train.amp,
        average=get_task("classification").parse_options(run.task.options).eval_average,
        out_dir=out_dir,
        progress=run.train.progress,
    )
    log.info("%s on %s: %s", path, run.data.val, result)
    return result
