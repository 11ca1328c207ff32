"""Training (an engine that trains any task), evaluation and their recipes.

>>> from vitzoo.train import fit, evaluate
>>> result = fit(model, train_set, val_set=val_set, out_dir="runs/demo", epochs=3, lr=1e-3)  # doctest: +SKIP
>>> print(evaluate(model, val_set))  # doctest: +SKIP

* :func:`fit_task` (``engine.py``): trains a :class:`Task` (``task.py``: batch -> loss and metrics, a monitor
  metric, extra modules): AdamW + warmup/cosine, layer-wise lr decay, clipping, accumulation, bf16 autocast,
  gradient checkpointing, EMA, DDP under ``torchrun``, verified atomic checkpoints and exact resume
  (``resume.py``), metric loggers (``run_log.py``), one run per directory (``lock.py``); it returns a
  :class:`FitResult` (``state.py``: the task's monitor, its best value and the validation history);
  ``errors.py`` holds the errors front ends print as one line.
* :func:`fit` (``fit.py``): fine-tuning a classifier, :class:`ClassificationTask` + the engine (Mixup/CutMix, label
  smoothing: :class:`ClassificationOptions`; best top-1).
* :func:`evaluate` (``eval.py``): multi-view averaging, top-1/top-5, confusion matrix PNG.
* :class:`TrainConfig`, :class:`RunConfig` (``config.py``), :func:`load_run_config` (``recipe.py``): the YAML
  recipes; tasks are named by the registry of :mod:`vitzoo.train.tasks`.
"""

from vitzoo.train.config import ConfigError, DataSpec, ModelSpec, RunConfig, TaskSpec, TrainConfig
from vitzoo.train.engine import fit_task
from vitzoo.train.eval import EvalResult, evaluate
from vitzoo.train.fit import ClassificationResult, fit
from vitzoo.train.optim import build_optimizer, build_scheduler, layer_ids, param_groups
from vitzoo.train.recipe import load_run_config
from vitzoo.train.state import FitResult, TrainState
from vitzoo.train.task import StepOutput, Task, ValidationContext, move_to
from vitzoo.train.tasks import ClassificationOptions, ClassificationTask, TaskData, get_task, register_task

__all__ = [
    "ClassificationOptions",
    "ClassificationResult",
    "ClassificationTask",
    "ConfigError",
    "DataSpec",
    "EvalResult",
    "FitResult",
    "ModelSpec",
    "RunConfig",
    "StepOutput",
    "Task",
    "TaskData",
    "TaskSpec",
    "TrainConfig",
    "TrainState",
    "ValidationContext",
    "build_optimizer",
    "build_scheduler",
    "evaluate",
    "fit",
    "fit_task",
    "get_task",
    "layer_ids",
    "load_run_config",
    "move_to",
    "param_groups",
    "register_task",
]
