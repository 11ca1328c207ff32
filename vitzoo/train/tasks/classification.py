"""Supervised classification as a task, and :func:`fit`: fine-tuning a classifier with the engine.

Training step: ``(clips, labels)`` -> optional Mixup/CutMix (``vitzoo.data.mixup``, soft targets) -> logits ->
cross-entropy with label smoothing (or soft-target cross-entropy after Mixup/CutMix), computed in float32.
Validation: :func:`vitzoo.train.evaluate` (multi-view averaging, top-1/top-5, loss, ``eval.json`` and the
confusion matrix PNG in the validation's folder); the best weights are those of the highest top-1.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from timm.loss import SoftTargetCrossEntropy
from torch import nn
from torch.utils.data import Dataset

from vitzoo.schema import ConfigError
from vitzoo.train.config import TrainConfig, train_config
from vitzoo.train.engine import FitResult, TrainState, fit_task
from vitzoo.train.eval import EvalResult, check_class_names, evaluate
from vitzoo.train.task import StepOutput, Task, ValidationContext
from vitzoo.train.tasks.registry import TaskData, register_task

log = logging.getLogger(__name__)


def num_classes_of(model: nn.Module) -> int:
    """The class count of a vitzoo model (``model.cfg.num_classes``); an error when it has none."""
    cfg = getattr(model, "cfg", None)
    if cfg is None or not getattr(cfg, "num_classes", 0):
        raise ValueError("Mixup/CutMix needs the class count: use a vitzoo model with num_classes > 0")
    return cfg.num_classes


class ClassificationTask(Task):
    """Batches of ``(inputs, labels[, ...])`` -> cross-entropy; validated by top-1 (higher is better).

    Args:
        model: a classifier returning logits ``(B, K)`` (a vitzoo model, or any ``nn.Module``).
        label_smoothing, mixup_alpha, cutmix_alpha: as in :class:`~vitzoo.train.TrainConfig` (Mixup/CutMix
            need a vitzoo video model with ``num_classes > 0`` and an even batch).
        average: multi-view averaging in validation, ``"prob"`` or ``"logits"`` (see :func:`evaluate`).
        classes: class names for the validation reports.
    """

    monitor = "top1"
    higher_is_better = True

    def __init__(
        self,
        model: nn.Module,
        *,
        label_smoothing: float = 0.0,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        average: str = "prob",
        classes: Sequence[str] | None = None,
    ) -> None:
        super().__init__(model)
        check_class_names(model, classes)
        self.average = average
        self.classes = list(classes) if classes is not None else None
        self.evaluations: list[EvalResult] = []  # every validation's full result, in order
        if mixup_alpha > 0 or cutmix_alpha > 0:
            from vitzoo.data.mixup import make_mixup

            self.mixup = make_mixup(
                num_classes=num_classes_of(model),
                mixup_alpha=mixup_alpha,
                cutmix_alpha=cutmix_alpha,
                label_smoothing=label_smoothing,
            )
            self.criterion: nn.Module = SoftTargetCrossEntropy()
        else:
            self.mixup = None
            self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    @classmethod
    def from_config(cls, model: nn.Module, cfg: TrainConfig, *, classes: Sequence[str] | None = None):
        """The task with the classification options of a :class:`TrainConfig`."""
        return cls(
            model,
            label_smoothing=cfg.label_smoothing,
            mixup_alpha=cfg.mixup_alpha,
            cutmix_alpha=cfg.cutmix_alpha,
            average=cfg.eval_average,
            classes=classes,
        )

    def training_step(self, batch: Any) -> StepOutput:
        """``(clips, labels)`` -> mixed (optional) -> logits -> loss (float32)."""
        clips, labels = batch[0], batch[1]
        targets = labels
        if self.mixup is not None:
            clips, targets = self.mixup(clips, labels)  # soft targets (B, K)
        logits = self.model(clips)  # (B, K)
        loss = self.criterion(logits.float(), targets)
        return StepOutput(loss=loss, metrics={}, batch_size=clips.shape[0])

    def validate(self, data: Any, ctx: ValidationContext) -> dict[str, float]:
        """:func:`evaluate` ``ctx.model`` on ``data``; ``top1``, ``top5``, ``loss``, ``num_samples``."""
        result = evaluate(
            ctx.model,
            data,
            batch_size=ctx.batch_size,
            num_workers=ctx.num_workers,
            device=ctx.device,
            amp=ctx.amp,
            average=self.average,
            classes=self.classes,
            out_dir=ctx.out_dir,
            progress=ctx.progress,
        )
        self.evaluations.append(result)
        return {"top1": result.top1, "top5": result.top5, "loss": result.loss, "num_samples": result.num_samples}


def check_classes(dataset: Dataset, num_classes: int, what: str, *, fix: str | None = None) -> None:
    """:class:`ConfigError` when the classes of ``dataset`` do not fit a head of ``num_classes`` outputs.

    A dataset that names its classes (a class-names file, or class folders) knows their number exactly: the head
    must have exactly that many outputs. A larger head is refused too, because outputs no sample can have still
    take probability mass, and reports and plots would need names for them; it is nearly always a class count
    copied from another recipe. Labels without names only bound the count from below (``max label + 1``: the top
    classes may be absent from a split), so there the head must have at least that many outputs.
    ``fix``: what the message tells to do (default: set ``model.num_classes``).
    """
    found = dataset.num_classes
    named = getattr(dataset, "classes", None) is not None
    if found > num_classes or (named and found != num_classes):
        source = "named" if named else "labelled up to"
        fix = fix or f"set model.num_classes to {found}"
        have = f"the {what} set has {found} classes ({source})"
        raise ConfigError(f"{have} but the model has num_classes={num_classes}; {fix}")


def check_same_classes(train_set: Dataset, val_set: Dataset) -> None:
    """:class:`ConfigError` when both sets name their classes and the names differ (a label would mean different
    classes in training and validation, e.g. a class folder missing from the validation split)."""
    train, val = getattr(train_set, "classes", None), getattr(val_set, "classes", None)
    if train is not None and val is not None and list(train) != list(val):
        differ = sorted(set(train) ^ set(val)) or "the same names in another order"
        raise ConfigError(
            f"the training and validation sets name different classes ({differ}); give both the same class list "
            "(data.classes)"
        )


@register_task("classification", needs_head=True)
def build_classification(run, model: nn.Module, data: TaskData) -> ClassificationTask:
    """The recipe's classifier: the ``train:`` section's classification options; datasets checked against
    ``model.num_classes``."""
    check_classes(data.train, run.model.num_classes, "training")
    if data.val is not None:
        check_classes(data.val, run.model.num_classes, "validation")
        check_same_classes(data.train, data.val)
    return ClassificationTask.from_config(model, run.train, classes=data.classes)


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

    A :class:`ClassificationTask` trained by :func:`vitzoo.train.engine.fit_task` (see there for ``out_dir``,
    ``config``/``options``, ``resume``, ``callbacks`` and ``run_config``).

    Args:
        model: a classifier taking batches of clips (a vitzoo model, or any ``nn.Module``); moved to the device.
        train_set: map-style dataset of ``(clip, label)`` (``clip`` ``(C, T, H, W)`` float, or ``(C, H, W)`` for an
            image model).
        val_set: dataset of ``(views, label)`` with views ``(V, *input)`` or ``(*input)``, evaluated every
            ``eval_every`` epochs (see :func:`vitzoo.train.evaluate`); the best top-1 is kept as
            ``best.safetensors``.
        classes: class names for reports (default: ``val_set.classes`` when present).

    Returns:
        a :class:`FitResult` whose ``evaluations`` are the :class:`EvalResult` of every validation.
    """
    cfg = train_config(config, **options)
    if classes is None:
        classes = getattr(val_set, "classes", None) or getattr(train_set, "classes", None)
    task = ClassificationTask.from_config(model, cfg, classes=classes)
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
    return replace(result, evaluations=list(task.evaluations))


__all__ = [
    "ClassificationTask",
    "build_classification",
    "check_class_names",
    "check_classes",
    "check_same_classes",
    "fit",
    "num_classes_of",
]
