"""Fine-tuning a classifier: :func:`fit` trains a :class:`ClassificationTask` with the engine (:func:`fit_task`).

>>> from vitzoo.train import fit
>>> result = fit(model, train_set, val_set=val_set, out_dir="runs/demo", epochs=3, mixup_alpha=0.8)  # doctest: +SKIP
>>> result.best_top1, result.evaluations[-1].top5  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from vitzoo.schema import replace
from vitzoo.train.config import TrainConfig, train_config
from vitzoo.train.engine import fit_task
from vitzoo.train.eval import EvalResult
from vitzoo.train.state import FitResult, TrainState
from vitzoo.train.tasks.classification import ClassificationOptions, ClassificationTask

TASK_OPTIONS = frozenset(f.name for f in dataclasses.fields(ClassificationOptions))


@dataclass
class ClassificationResult(FitResult):
    """A :class:`FitResult` with the full :class:`EvalResult` of every validation (in order)."""

    evaluations: list[EvalResult] = field(default_factory=list)


def fit(
    model: nn.Module,
    train_set: Dataset,
    *,
    out_dir: str | os.PathLike,
    val_set: Dataset | None = None,
    config: TrainConfig | None = None,
    task_options: ClassificationOptions | None = None,
    resume: bool | str | os.PathLike = False,
    callbacks: Sequence[Callable[[TrainState], None]] = (),
    classes: Sequence[str] | None = None,
    run_config: Any = None,
    **options: Any,
) -> ClassificationResult:
    """Fine-tune ``model`` on ``train_set``; evaluate on ``val_set``; write logs, plots and checkpoints to ``out_dir``.

    A :class:`ClassificationTask` trained by :func:`vitzoo.train.engine.fit_task` (see there for ``out_dir``,
    ``config``, ``resume``, ``callbacks`` and ``run_config``).

    Args:
        model: a classifier taking batches of clips (a vitzoo model, or any ``nn.Module``); moved to the device.
        train_set: map-style dataset of ``(clip, label)`` (``clip`` ``(C, T, H, W)`` float, or ``(C, H, W)`` for an
            image model).
        val_set: dataset of ``(views, label)`` with views ``(V, *input)`` or ``(*input)``, evaluated every
            ``eval_every`` epochs (see :func:`vitzoo.train.evaluate`); the best top-1 is kept as
            ``best.safetensors``.
        task_options: the classification options (:class:`ClassificationOptions`); ``options`` named like its
            fields (``label_smoothing``, ``mixup_alpha``, ``cutmix_alpha``, ``eval_average``) replace them, the
            other ``options`` replace fields of ``config`` (``fit(..., epochs=3, lr=1e-3, mixup_alpha=0.8)``).
        classes: class names for reports (default: ``val_set.classes`` when present).

    Returns:
        a :class:`ClassificationResult`: the :class:`FitResult` (monitor ``top1``) and the :class:`EvalResult` of
        every validation as ``evaluations``.
    """
    ours = {k: options.pop(k) for k in list(options) if k in TASK_OPTIONS}
    cfg = train_config(config, **options)
    task_opts = replace(task_options or ClassificationOptions(), **ours)
    task_opts.check_train(cfg)
    if classes is None:
        classes = getattr(val_set, "classes", None) or getattr(train_set, "classes", None)
    task = ClassificationTask.from_options(model, task_opts, classes=classes)
    result = fit_task(
        task,
        train_set,
        out_dir=out_dir,
        val_data=val_set,
        config=cfg,
        resume=resume,
        callbacks=callbacks,
        run_config=run_config,
    )
    fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    return ClassificationResult(**fields, evaluations=list(task.evaluations))


__all__ = ["ClassificationResult", "fit"]
