"""Run configuration: the training options (``TrainConfig``) and the CLI recipe (``RunConfig``) with YAML loading.

A recipe is a YAML file with five top-level entries, each mapping onto one dataclass below::

    model:  {name, num_classes, pretrained, tubelet_init, options}   -> ModelSpec
    data:   {root, train, val, classes, layout, sampler, ...}        -> DataSpec
    task:   {name, options}                                          -> TaskSpec (default: classification)
    train:  {epochs, batch_size, lr, ...}                            -> TrainConfig
    output_dir: runs/<recipe>

Nothing is inferred: every key the file can hold is a dataclass field, unknown keys raise
:class:`ConfigError` with the closest known names, and values are checked against the field types
(``1e-3`` is accepted for a float field even though YAML 1.1 reads it as a string). Command-line
overrides use dotted keys, ``--set train.lr=3e-4 --set model.options.drop_path_rate=0.1``, their values
parsed as YAML scalars. ``model.options`` is a free mapping of model config fields; ``vitzoo.create``
checks them (unknown names raise with close matches there). ``task.options`` is a free mapping too, checked
against the options dataclass the task registered (:mod:`vitzoo.train.tasks`) by the recipe loader,
:func:`vitzoo.train.recipe.load_run_config`: this module knows no task.
"""

from __future__ import annotations

import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from vitzoo.checkpoints.inflate import TubeletInit
from vitzoo.data.recipe import DataSpec
from vitzoo.durable import write_text_atomic
from vitzoo.errors import UnknownNameError
from vitzoo.schema import ConfigError, apply_overrides, build, check_range, coerce, parse_override, to_dict

AmpMode = Literal["none", "bf16"]
EvalAverage = Literal["prob", "logits"]  # multi-view averaging of vitzoo.train.evaluate
AMP_MODES = typing.get_args(AmpMode)
EVAL_AVERAGES = typing.get_args(EvalAverage)

__all__ = [
    "AMP_MODES",
    "EVAL_AVERAGES",
    "ConfigError",
    "DataSpec",
    "ModelSpec",
    "RunConfig",
    "TaskSpec",
    "TrainConfig",
    "apply_overrides",
    "build",
    "coerce",
    "dump_yaml",
    "parse_override",
    "to_dict",
    "train_config",
]


@dataclass
class TrainConfig:
    """Options of the training engine, :func:`vitzoo.train.fit_task` and :func:`vitzoo.train.fit` (the ``train:``
    section of a recipe), the same for every task (a task's own options are the recipe's ``task.options``).

    Steps are optimizer updates: one update consumes ``accum_steps`` batches of ``batch_size`` clips on
    each of the ``world_size`` processes, so the effective batch is their product. The learning rate
    is not rescaled with the batch size.
    """

    epochs: int = 10
    batch_size: int = 8  # clips per process and micro-batch
    accum_steps: int = 1  # micro-batches accumulated per optimizer update
    lr: float = 5e-4  # peak learning rate (after warmup), for the last layer when layer_decay is set
    min_lr: float = 1e-6  # end of the cosine schedule
    warmup_epochs: float = 1.0  # linear warmup from warmup_lr, counted in (fractional) epochs
    warmup_lr: float = 1e-6
    weight_decay: float = 0.05  # not applied to 1-D params (norms, biases) nor pos_embed/cls_token/time_embed
    layer_decay: float | None = None  # layer-wise lr decay factor (e.g. 0.75); see vitzoo.train.optim
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    clip_grad: float | None = 1.0  # max global gradient norm; None disables clipping
    amp: AmpMode = "none"  # "bf16": bfloat16 autocast on CPU or CUDA; "none": float32
    grad_checkpointing: bool = False  # recompute block activations in backward (model.set_grad_checkpointing)
    compile: bool = False  # torch.compile the model in place (model.compile()) for training and evaluation
    ema_decay: float | None = None  # keep an EMA of the weights (timm ModelEmaV3); evaluated and saved as best
    seed: int = 0
    max_steps: int | None = None  # stop (with a checkpoint) after this many updates; the schedule still spans epochs
    device: str = "auto"  # "auto": cuda (the local rank's GPU) if available, else cpu; or cpu, cuda, cuda:N, mps
    dist_timeout_s: float = 600.0  # torchrun: a collective fails after waiting this long for a stalled rank
    num_workers: int = 0  # DataLoader worker processes
    eval_every: int = 1  # evaluate every N epochs (and after the last); 0: never
    eval_batch_size: int | None = None  # default: batch_size
    save_every: int | None = None  # also checkpoint every N updates (always at epoch ends and on stop)
    keep_last: int = 2  # step checkpoints kept (best.safetensors is kept separately)
    log_every: int = 10  # updates between metric lines in metrics.jsonl
    csv: bool = False  # also write metrics.csv
    tensorboard: bool = False  # also write <output_dir>/tensorboard/ events (needs pip install vitzoo[tensorboard])
    plot: bool = True  # write training_curves.png at the end
    progress: bool = True  # tqdm progress bars (rank 0 only)

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values out of range (one line naming the option, the value and the range)."""
        positive = ("epochs", "batch_size", "accum_steps", "log_every", "keep_last")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("save_every", "max_steps", "eval_batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"train.{name} must be >= 1 or null, got {value}")
        for name in ("lr", "eps", "dist_timeout_s"):
            check_range(f"train.{name}", getattr(self, name), low=0, low_open=True)
        for name in ("min_lr", "warmup_lr", "weight_decay", "eval_every"):
            check_range(f"train.{name}", getattr(self, name), low=0)
        for name in ("num_workers", "warmup_epochs"):
            check_range(f"train.{name}", getattr(self, name), low=0)
        if self.min_lr > self.lr:
            raise ConfigError(f"train.min_lr ({self.min_lr}) must not exceed train.lr ({self.lr})")
        for i, beta in enumerate(self.betas):
            check_range(f"train.betas[{i}]", beta, low=0, high=1, high_open=True)
        if self.layer_decay is not None:
            check_range("train.layer_decay", self.layer_decay, low=0, high=1, low_open=True)
        if self.ema_decay is not None:
            check_range("train.ema_decay", self.ema_decay, low=0, high=1, low_open=True, high_open=True)
        if self.clip_grad is not None:
            check_range("train.clip_grad", self.clip_grad, low=0, low_open=True)
        if self.device != "auto":
            from vitzoo.train.distributed import parse_device

            parse_device(self.device)  # the syntax; whether this machine has it is checked when training starts


@dataclass
class ModelSpec:
    """Which model to build (the ``model:`` section): arguments of ``vitzoo.create``."""

    name: str = ""  # a registered name (vitzoo.list_models())
    num_classes: int | None = 0  # must equal the number of classes of the dataset; null: taken from the dataset
    pretrained: str | None = None  # weight file, checkpoint folder, hf-hub:<org>/<name>[@rev] or a name in weights/
    tubelet_init: TubeletInit = "central"  # image -> video kernel inflation: central, average or repeat
    options: dict[str, Any] = field(default_factory=dict)  # model config fields, e.g. {drop_path_rate: 0.1}

    def validate(self, *, needs_head: bool = True) -> None:
        """Raise :class:`ConfigError` for a missing or unknown name, a bad class count or bad options.

        ``needs_head``: the task trains a classifier, so ``num_classes`` must be >= 1 (else 0, no head, is allowed).
        The options are checked by building the model's config (not the model): unknown fields raise with
        the closest field names.
        """
        if not self.name:
            raise ConfigError("model.name is required (see vitzoo.list_models())")
        if self.num_classes is None:  # filled from the dataset when training starts (train_from_config)
            self.validate_options(num_classes=1 if needs_head else 0)
            return
        if self.num_classes < (1 if needs_head else 0):
            need = ">= 1 (the task trains a classifier)" if needs_head else ">= 0 (0: no head)"
            raise ConfigError(f"model.num_classes must be {need}, got {self.num_classes}")
        self.validate_options(num_classes=self.num_classes)

    def validate_options(self, *, num_classes: int) -> None:
        """Raise :class:`ConfigError` for options the model's config does not take (checked with ``num_classes``)."""
        from vitzoo.api import model_config

        if "num_classes" in self.options:
            raise ConfigError("set the class count with model.num_classes, not model.options.num_classes")
        try:
            model_config(self.name, num_classes=num_classes, **self.options)
        except UnknownNameError as exc:  # unknown name; the registry's message lists close ones
            raise ConfigError(f"model.name: {exc}") from None
        except ConfigError as exc:  # an option the config does not take, or a bad value
            raise ConfigError(f"model.options: {exc}") from None


@dataclass
class TaskSpec:
    """What the engine trains the model for (the ``task:`` section): a registered task and its options.

    ``name`` is a key of :func:`vitzoo.train.tasks.task_names` (``classification``, the default, or a
    self-supervised method once ``vitzoo.ssl`` is imported); ``options`` are checked against that task's options
    dataclass when the recipe loads (:func:`vitzoo.train.recipe.load_run_config`).
    """

    name: str = "classification"
    options: dict[str, Any] = field(default_factory=dict)  # fields of the task's options dataclass


@dataclass
class RunConfig:
    """A whole recipe: model, data, task, training options and the output directory."""

    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    task: TaskSpec = field(default_factory=TaskSpec)
    train: TrainConfig = field(default_factory=TrainConfig)
    output_dir: str = "runs/run"

    def validate(self, *, needs_head: bool = True) -> None:
        """Validate the model, data and training sections (``needs_head``: what the task needs of the model;
        the task section is validated against the task registry by the recipe loader)."""
        self.model.validate(needs_head=needs_head)
        self.data.validate()
        self.train.validate()


def train_config(config: TrainConfig | None = None, **options: Any) -> TrainConfig:
    """A validated :class:`TrainConfig`: ``config`` (default values if None) with ``options`` replaced."""
    base = to_dict(config) if config is not None else {}
    cfg = build(TrainConfig, {**base, **options}, prefix="")
    cfg.validate()
    return cfg


def dump_yaml(cfg: Any, path: str | os.PathLike) -> Path:
    """Write a config dataclass as YAML, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
