"""Frozen features of a dataset: the encoder's pooled output for every sample, computed once.

Used by the representation evaluations (:mod:`vitzoo.ssl.knn`, :mod:`vitzoo.ssl.linear_probe`). The model
must return features ``(B, D)`` (a backbone created with ``num_classes=0``); samples are ``(input, label)``
pairs whose input is one image ``(C, H, W)`` or one clip ``(C, T, H, W)``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm


@torch.no_grad()
def extract_features(
    model: nn.Module,
    data: Dataset | DataLoader,
    *,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    num_workers: int = 0,
    amp: str = "none",
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``model(x)`` for every sample of ``data`` in order -> features ``(N, D)`` float32 (CPU), labels ``(N,)``.

    ``data`` is a map-style dataset (read in order, ``batch_size`` at a time) or a ready ``DataLoader``. The
    model runs in eval mode (its mode is restored afterwards), under bfloat16 autocast with ``amp="bf16"``.
    """
    if amp not in ("none", "bf16"):
        raise ValueError(f"amp={amp!r}; expected 'none' or 'bf16'")
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))  # the model's device
    device = torch.device(device)
    loader = data if isinstance(data, DataLoader) else DataLoader(data, batch_size=batch_size, num_workers=num_workers)
    was_training = model.training
    model.eval()
    features, labels = [], []
    try:
        for inputs, targets in tqdm(loader, desc="features", disable=not progress, leave=False):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
                out = model(inputs.to(device, non_blocking=True))  # (B, D)
            if out.ndim != 2:
                raise ValueError(f"the model returned shape {tuple(out.shape)}; create it with num_classes=0")
            features.append(out.float().cpu())
            labels.append(torch.as_tensor(targets).cpu())
    finally:
        model.train(was_training)
    if not features:
        raise ValueError("the dataset is empty")
    return torch.cat(features), torch.cat(labels).long()
