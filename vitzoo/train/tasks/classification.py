"""Supervised classification as a task, with its options (``task.options`` of a recipe).

Training step: ``(clips, labels)`` -> optional Mixup/CutMix (``vitzoo.data.mixup``, soft targets) -> logits ->
cross-entropy with label smoothing (or soft-target cross-entropy after Mixup/CutMix), computed in float32.
Validation: :func:`vitzoo.train.evaluate` (multi-view averaging, top-1/top-5, loss, ``eval.json`` and the
confusion matrix PNG in the validation's folder); the best weights are those of the highest top-1.
:func:`vitzoo.train.fit` (``train/fit.py``) trains this task with the engine.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from timm.loss import SoftTargetCrossEntropy
from torch import nn
from torch.utils.data import Dataset

from vitzoo.checkpoints.io import LABELS_KEY
from vitzoo.schema import ConfigError, build, check_range
from vitzoo.train.config import EvalAverage, TrainConfig
from vitzoo.train.eval import EvalResult, check_class_names, evaluate
from vitzoo.train.task import StepOutput, Task, ValidationContext
from vitzoo.train.tasks.registry import TaskData, register_task


@dataclass
class ClassificationOptions:
    """``task.options`` of ``task: {name: classification}`` (and the keyword options of :func:`vitzoo.train.fit`).

    Mixup/CutMix need a vitzoo video model with ``num_classes > 0`` and an even ``train.batch_size``
    (:meth:`check_train`); they mix pairs of the batch.
    """

    label_smoothing: float = 0.0  # in [0, 1)
    mixup_alpha: float = 0.0  # > 0 enables Mixup (video clips (B, C, T, H, W) only)
    cutmix_alpha: float = 0.0  # > 0 enables CutMix
    eval_average: EvalAverage = "prob"  # multi-view averaging in validation of "prob" (softmax) or "logits"

    @property
    def mixes(self) -> bool:
        """Whether Mixup or CutMix is on."""
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    def validate(self, prefix: str = "task.options.") -> None:
        """Raise :class:`ConfigError` for values out of range, named with ``prefix`` (``"train."`` for the keys of
        old recipes)."""
        check_range(f"{prefix}label_smoothing", self.label_smoothing, low=0, high=1, high_open=True)
        for name in ("mixup_alpha", "cutmix_alpha"):
            check_range(f"{prefix}{name}", getattr(self, name), low=0)

    def check_train(self, train: TrainConfig) -> None:
        """:class:`ConfigError` when the training options do not fit these (Mixup/CutMix need an even batch)."""
        if self.mixes and train.batch_size % 2:
            raise ConfigError(f"Mixup/CutMix needs an even train.batch_size, got {train.batch_size}")


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
        label_smoothing, mixup_alpha, cutmix_alpha: as in :class:`ClassificationOptions` (Mixup/CutMix need a
            vitzoo video model with ``num_classes > 0`` and an even batch).
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
        if self.classes:  # the class names travel with every checkpoint (vitzoo predict reads them)
            self.checkpoint_metadata[LABELS_KEY] = json.dumps(self.classes)
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
    def from_options(
        cls, model: nn.Module, options: ClassificationOptions, *, classes: Sequence[str] | None = None
    ) -> ClassificationTask:
        """The task with ``options``."""
        return cls(
            model,
            label_smoothing=options.label_smoothing,
            mixup_alpha=options.mixup_alpha,
            cutmix_alpha=options.cutmix_alpha,
            average=options.eval_average,
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


@register_task("classification", options=ClassificationOptions, needs_head=True)
def build_classification(run, model: nn.Module, data: TaskData) -> ClassificationTask:
    """The recipe's classifier: ``task.options`` as :class:`ClassificationOptions`; datasets checked against
    ``model.num_classes``."""
    options = build(ClassificationOptions, run.task.options, prefix="task.options.", validate=True)
    options.check_train(run.train)
    check_classes(data.train, run.model.num_classes, "training")
    if data.val is not None:
        check_classes(data.val, run.model.num_classes, "validation")
        check_same_classes(data.train, data.val)
    return ClassificationTask.from_options(model, options, classes=data.classes)


__all__ = [
    "ClassificationOptions",
    "ClassificationTask",
    "build_classification",
    "check_class_names",
    "check_classes",
    "check_same_classes",
    "num_classes_of",
]
