"""Linear probing: a linear classifier trained on frozen features (the standard SSL evaluation).

Features are computed once (:func:`vitzoo.train.features.extract_features`), standardised with the training
set's per-dimension mean and std (what MAE's parameter-free BatchNorm before the linear layer amounts to at
test time), and a single ``nn.Linear`` is trained on them with SGD (momentum 0.9, cosine learning-rate decay,
cross entropy); the weights start at ``N(0, 0.01^2)`` and zero bias, as in MoCo v3 / MAE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from vitzoo.progress import progress_bar
from vitzoo.ssl.features import split_features


@dataclass
class LinearProbeResult:
    """Accuracies (fractions in [0, 1]) of the trained probe and the probe itself (with its standardisation)."""

    top1: float
    train_top1: float
    classifier: nn.Linear
    mean: torch.Tensor  # (D,) subtracted from features before the classifier
    std: torch.Tensor  # (D,) divided by after the mean

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Class logits ``(N, K)`` of raw features ``(N, D)``."""
        with torch.no_grad():
            return self.classifier((features.float() - self.mean) / self.std)


def _top1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return (logits.argmax(dim=1) == labels).float().mean().item()


def linear_probe(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    val_features: torch.Tensor,
    val_labels: torch.Tensor,
    *,
    num_classes: int | None = None,
    epochs: int = 100,
    batch_size: int = 256,
    lr: float = 0.1,
    weight_decay: float = 0.0,
    standardize: bool = True,
    seed: int = 0,
    progress: bool = False,
) -> LinearProbeResult:
    """Train a linear classifier on ``train_features`` ``(N, D)`` and report top-1 on the validation features."""
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(f"need epochs >= 1, batch_size >= 1, lr > 0; got {epochs}, {batch_size}, {lr}")
    if num_classes is None:
        num_classes = int(torch.cat([train_labels, val_labels]).max()) + 1
    x = train_features.float()
    mean = x.mean(dim=0) if standardize else torch.zeros_like(x[0])
    std = x.std(dim=0).clamp(min=1e-6) if standardize and len(x) > 1 else torch.ones_like(x[0])
    x = (x - mean) / std  # (N, D)
    g = torch.Generator().manual_seed(seed)
    classifier = nn.Linear(x.shape[1], num_classes)
    with torch.no_grad():
        classifier.weight.normal_(0.0, 0.01, generator=g)
        classifier.bias.zero_()
    classifier.to(x.device)
    train_labels = train_labels.to(x.device)
    opt = torch.optim.SGD(classifier.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(x) / batch_size)
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    for _ in progress_bar(range(epochs), enabled=progress, desc="linear probe", leave=False):
        for idx in torch.randperm(len(x), generator=g).to(x.device).split(batch_size):
            loss = F.cross_entropy(classifier(x[idx]), train_labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    result = LinearProbeResult(top1=0.0, train_top1=0.0, classifier=classifier, mean=mean, std=std)
    result.top1 = _top1(result.predict(val_features), val_labels)
    result.train_top1 = _top1(result.predict(train_features), train_labels)
    return result


def evaluate_linear_probe(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset,
    *,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    num_workers: int = 0,
    amp: str = "none",
    progress: bool = True,
    **probe_options,
) -> LinearProbeResult:
    """Linear-probe ``model``'s frozen features; ``probe_options`` go to :func:`linear_probe`."""
    opts = dict(batch_size=batch_size, device=device, num_workers=num_workers, amp=amp, progress=progress)
    f = split_features(model, train_set, val_set, **opts)
    return linear_probe(f.train, f.train_labels, f.val, f.val_labels, progress=progress, **probe_options)
