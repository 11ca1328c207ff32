"""SimCLR v2 distillation as a task: a fine-tuned teacher teaches a student on unlabelled clips.

SimCLR v2 (Chen et al., 2020b, https://arxiv.org/abs/2006.10029) has three steps: self-supervised pre-training,
fine-tuning on the few labels, then distillation of the fine-tuned network into a student (the same size, or
smaller) on the unlabelled data, using the teacher's temperature-softened predictions as targets
(:class:`~vitzoo.ssl.losses.DistillationLoss`). As a recipe::

    model: {name: vivit_fact_enc_micro_4x2, num_classes: 4, pretrained: runs/simclr/checkpoints/best.safetensors}
    task:
      name: distill
      options: {teacher: runs/finetune/checkpoints/best.safetensors, temperature: 1.0}

The training split's labels are not used (``label_weight: 0``, the default) unless ``label_weight > 0`` adds
that much cross-entropy on them (the paper's variant for when labels are there). Validation and the best
checkpoint are those of classification (top-1 with multi-view averaging).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vitzoo.schema import ConfigError, check_range
from vitzoo.ssl.losses import DistillationLoss
from vitzoo.train.config import EvalAverage, RunConfig
from vitzoo.train.task import StepOutput
from vitzoo.train.tasks.classification import ClassificationTask, check_classes
from vitzoo.train.tasks.registry import TaskData, get_task, register_task


@dataclass
class DistillOptions:
    """``task.options`` of ``task: {name: distill}``.

    Attributes:
        teacher: weights of the fine-tuned teacher classifier (a ``.safetensors`` file written by vitzoo, e.g. a
            run's ``checkpoints/best.safetensors``, or a name in ``weights/``); required.
        temperature: ``tau`` of the softened predictions (1.0).
        label_weight: weight of the cross-entropy on the training labels added to the distillation loss (0: the
            labels are not used).
        eval_average: multi-view averaging in validation, ``"prob"`` or ``"logits"``.
    """

    teacher: str = ""
    temperature: float = 1.0
    label_weight: float = 0.0
    eval_average: EvalAverage = "prob"

    def validate(self) -> None:
        """Raise :class:`ConfigError` for a missing teacher or values out of range."""
        if not self.teacher:
            raise ConfigError("task.options.teacher is required: the fine-tuned classifier's weights file")
        check_range("task.options.temperature", self.temperature, low=0, low_open=True)
        check_range("task.options.label_weight", self.label_weight, low=0)


class Distillation(ClassificationTask):
    """A student classifier trained on a frozen teacher's softened predictions; validated like classification.

    Args:
        model: the student, logits ``(B, K)``.
        teacher: the fine-tuned teacher, logits ``(B, K)`` on the same inputs; frozen and kept in eval mode.
        temperature, label_weight: as in :class:`DistillOptions`.
        average, classes: validation options of :class:`ClassificationTask`.

    Logs ``distill`` (the distillation loss), ``agreement`` (fraction of the batch where the student's top class is
    the teacher's) and, with ``label_weight > 0``, ``label_loss``. The teacher is not saved with the training
    state: it is the file the recipe names.
    """

    def __init__(
        self,
        model: nn.Module,
        teacher: nn.Module,
        *,
        temperature: float = 1.0,
        label_weight: float = 0.0,
        average: str = "prob",
        classes: Sequence[str] | None = None,
    ) -> None:
        super().__init__(model, average=average, classes=classes)
        self.teacher = teacher.requires_grad_(False).eval()
        self.distill = DistillationLoss(temperature)
        self.label_weight = label_weight

    def train(self, mode: bool = True) -> Distillation:
        """Set the student's mode; the teacher stays in eval mode (no dropout, fixed BatchNorm statistics)."""
        super().train(mode)
        self.teacher.eval()
        return self

    def training_step(self, batch: Any) -> StepOutput:
        clips, labels = batch[0], batch[1]
        logits = self.model(clips)  # (B, K)
        with torch.no_grad():
            teacher_logits = self.teacher(clips)  # (B, K)
        distill = self.distill(logits, teacher_logits)
        agreement = (logits.argmax(dim=1) == teacher_logits.argmax(dim=1)).float().mean()
        metrics = {"distill": distill.detach(), "agreement": agreement}
        loss = distill
        if self.label_weight > 0:
            label_loss = self.criterion(logits.float(), labels)
            loss = loss + self.label_weight * label_loss
            metrics["label_loss"] = label_loss.detach()
        return StepOutput(loss, metrics, batch_size=clips.shape[0])

    def extra_state_dict(self) -> dict[str, torch.Tensor]:
        """The task's state without the teacher (fixed, and named by the recipe)."""
        return {k: v for k, v in super().extra_state_dict().items() if not k.startswith("teacher.")}


def load_teacher(source: str, student: nn.Module) -> nn.Module:
    """The teacher classifier saved at ``source``; :class:`ConfigError` unless it fits the student's input and
    class count."""
    from vitzoo.api import load_classifier
    from vitzoo.checkpoints.io import resolve_weights

    teacher = load_classifier(resolve_weights(source), command="task.options.teacher")
    t_classes, s_classes = teacher.cfg.num_classes, student.cfg.num_classes
    if t_classes != s_classes:
        raise ConfigError(
            f"task.options.teacher {source}: the teacher has num_classes={t_classes}, the student "
            f"model.num_classes={s_classes}; distil into a student with the teacher's classes"
        )
    if tuple(teacher.input_shape) != tuple(student.input_shape):
        raise ConfigError(
            f"task.options.teacher {source}: the teacher takes inputs {tuple(teacher.input_shape)}, the student "
            f"{tuple(student.input_shape)}; they must see the same clips"
        )
    return teacher


@register_task("distill", options=DistillOptions, needs_head=True)
def build_distillation(run: RunConfig, model: nn.Module, data: TaskData) -> Distillation:
    """The ``distill`` task of a recipe: the teacher of ``task.options.teacher`` teaches ``model``."""
    options = get_task("distill").parse_options(run.task.options)
    check_classes(data.train, run.model.num_classes, "training")
    if data.val is not None:
        check_classes(data.val, run.model.num_classes, "validation")
    return Distillation(
        model,
        load_teacher(options.teacher, model),
        temperature=options.temperature,
        label_weight=options.label_weight,
        average=options.eval_average,
        classes=data.classes,
    )
