"""Shared pieces of the training tests: random-tensor datasets and tiny models (no video decoding)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

import vitzoo

NANO = "vivit_fact_enc_nano_8x2"  # 4 frames at 32 px, dim 64, 2 spatial + 1 temporal layers


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
