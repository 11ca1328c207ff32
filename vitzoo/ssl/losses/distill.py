"""Knowledge distillation from a teacher's softened predictions (SimCLR v2's third step).

Chen et al., 2020b, "Big Self-Supervised Models are Strong Semi-Supervised Learners" (SimCLR v2),
https://arxiv.org/abs/2006.10029, eq. (2): the student learns from the teacher's predictions on unlabelled data,

    L = - sum_x sum_y P_T(y | x; tau) log P_S(y | x; tau),   P(y | x; tau) = softmax(logits / tau)_y

(Hinton et al., 2015, with the teacher's logits held fixed). This module returns the mean over the batch of
``KL(P_T || P_S)``, which is that cross-entropy minus the teacher's entropy: the same gradients for the student,
and 0 when the student matches the teacher. No ``tau^2`` factor (SimCLR v2 has none; Hinton et al. add it when
mixing with a hard-label loss).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vitzoo.schema import check_range
from vitzoo.ssl.losses.precision import full_precision


class DistillationLoss(nn.Module):
    """``mean_x KL(softmax(t_x / tau) || softmax(s_x / tau))``; no gradient flows into the teacher's logits.

    Args:
        temperature: ``tau`` (SimCLR v2 uses 1.0 for distillation; larger values soften both distributions).
    """

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        check_range("temperature", temperature, low=0, low_open=True, error=ValueError)
        self.temperature = temperature

    @full_precision
    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        """``(B, K)`` student and teacher logits -> scalar loss."""
        if student_logits.shape != teacher_logits.shape or student_logits.ndim != 2:
            raise ValueError(
                f"expected student and teacher logits of one shape (B, K), got {tuple(student_logits.shape)} "
                f"and {tuple(teacher_logits.shape)}"
            )
        log_student = F.log_softmax(student_logits / self.temperature, dim=1)  # (B, K)
        log_teacher = F.log_softmax(teacher_logits.detach() / self.temperature, dim=1)  # (B, K)
        return (log_teacher.exp() * (log_teacher - log_student)).sum(dim=1).mean()
