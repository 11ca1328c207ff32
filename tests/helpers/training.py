"""Shared pieces of the training tests: random-tensor datasets, tiny models (no video decoding), a label-free task,
a disk that fills up."""

from __future__ import annotations

import copy
import errno
import os

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

import vitzoo
import vitzoo.durable
from vitzoo.train import StepOutput, Task, ValidationContext

NANO = "vivit_fact_enc_nano_8x2"  # 4 frames at 32 px, dim 64, 2 spatial + 1 temporal layers
IMAGE_NANO, IMAGE_SHAPE = "vit_nano_patch8_32", (3, 32, 32)  # 16 patches of 8 px, dim 64


class RandomClips(Dataset):
    """``n`` fixed random clips ``(C, T, H, W)`` (or multi-view ``(V, C, T, H, W)``) with labels in ``[0, k)``."""

    def __init__(self, n: int, shape: tuple[int, ...], k: int, *, views: int | None = None, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        size = (n, views, *shape) if views else (n, *shape)
        self.clips = torch.randn(*size, generator=g)
        self.labels = torch.randint(k, (n,), generator=g)
        self.classes = [f"class{i}" for i in range(k)]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.clips[i], int(self.labels[i])


def nano_model(*, num_classes: int = 4, seed: int = 0, name: str = NANO, **overrides) -> torch.nn.Module:
    """A freshly initialised nano video model, the same weights for the same ``seed``."""
    torch.manual_seed(seed)
    return vitzoo.create(name, num_classes=num_classes, **overrides)


class RandomViews(Dataset):
    """``n`` fixed random samples of ``views`` views each, ``(V, *shape)``, and no labels (a label-free dataset).

    The views of a sample share a random base and differ by small noise, so they have something in common.
    """

    def __init__(self, n: int, shape: tuple[int, ...], *, views: int = 2, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        base = torch.randn(n, 1, *shape, generator=g)
        self.views = base + 0.1 * torch.randn(n, views, *shape, generator=g)

    def __len__(self) -> int:
        return len(self.views)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.views[i]


class TwoViewConsistency(Task):
    """A label-free task for the engine's tests: two-view feature consistency with a momentum target network.

    loss = mean over the batch of ``|| projector(model(view 1)) - target(view 2) ||^2``, where the target is an EMA
    (momentum ``momentum``) of model + projector, updated after every optimizer step and never trained (like BYOL
    without its predictor, so it may collapse: fine for testing the engine). Validation: the same distance on
    held-out views with the validated (EMA) model, ``val_distance``, lower is better. ``feature_std`` (mean
    per-dimension std of the normalised projections) is the usual collapse indicator.
    """

    monitor = "val_distance"
    higher_is_better = False

    def __init__(self, model: nn.Module, *, dim: int = 16, momentum: float = 0.9) -> None:
        super().__init__(model)
        self.momentum = momentum
        self.projector = nn.Linear(model.cfg.embed_dim, dim)
        self.target = copy.deepcopy(nn.ModuleDict({"model": model, "projector": self.projector}))
        self.target.requires_grad_(False)

    def project(self, model: nn.Module, views: torch.Tensor) -> torch.Tensor:
        return self.projector(model(views)).float()  # (B, dim)

    def distance(self, online: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.target["projector"](self.target["model"](views)).float()  # (B, dim)
        return (online - target).pow(2).sum(dim=-1)  # (B,)

    def training_step(self, batch: torch.Tensor) -> StepOutput:
        online = self.project(self.model, batch[:, 0])
        loss = self.distance(online, batch[:, 1]).mean()
        feature_std = F.normalize(online.detach(), dim=-1).std(dim=0).mean()
        return StepOutput(loss=loss, metrics={"feature_std": feature_std}, batch_size=batch.shape[0])

    @torch.no_grad()
    def on_update(self, step: int, total_steps: int) -> None:
        online = [*self.model.parameters(), *self.projector.parameters()]
        for target, param in zip(self.target.parameters(), online, strict=True):
            target.lerp_(param, 1 - self.momentum)

    @torch.no_grad()
    def validate(self, data: Dataset, ctx: ValidationContext) -> dict[str, float]:
        was_training = ctx.model.training
        ctx.model.eval()
        total = torch.zeros((), dtype=torch.float64)
        for i in range(len(data)):
            views = data[i].to(ctx.device)[None]  # (1, V, *input)
            total += self.distance(self.project(ctx.model, views[:, 0]), views[:, 1]).sum().double().cpu()
        ctx.model.train(was_training)
        return {"val_distance": float(total) / len(data), "num_samples": len(data)}


def label_free_task(*, seed: int = 0, **overrides) -> TwoViewConsistency:
    """:class:`TwoViewConsistency` on a fresh image nano ViT without a head, the same weights for the same ``seed``."""
    torch.manual_seed(seed)
    return TwoViewConsistency(vitzoo.create(IMAGE_NANO, num_classes=0, **overrides))


def disk_full_after(nbytes: int, name: str):
    """A :func:`vitzoo.durable.write_chunk` for which the disk fills up after ``nbytes`` bytes of the file
    whose (temporary) name contains ``name``: it writes what fits, then raises ``OSError(ENOSPC)``."""
    real = vitzoo.durable.write_chunk
    written = 0

    def write(f, data):
        nonlocal written
        if name not in f.name:
            return real(f, data)
        room = max(nbytes - written, 0)
        written += real(f, bytes(data)[:room])
        if len(data) > room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return len(data)

    return write
