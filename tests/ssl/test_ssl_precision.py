"""Every loss runs in float32 under bf16 autocast: finite at temperature 0.1, equal to its float32 value."""

from __future__ import annotations

import pytest
import torch

from vitzoo.ssl.losses import ContrastiveLoss, NegativeCosineSimilarity, NTXentLoss, SupConLoss, TripletLoss, VICRegLoss

LABELS = torch.arange(64) % 8

CASES = {
    "ntxent": lambda z: NTXentLoss(0.1)(z),
    "supcon": lambda z: SupConLoss(0.1)(z, LABELS),
    "contrastive": lambda z: ContrastiveLoss(1.0, normalize=True)(z, LABELS),
    "triplet": lambda z: TripletLoss(0.2, mining="batch_hard")(z, LABELS),
    "negative_cosine": lambda z: NegativeCosineSimilarity().symmetric(z, z.flip(0)),
    "vicreg": lambda z: VICRegLoss()(z[:, 0], z[:, 1]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_loss_is_float32_under_bf16_autocast(name):
    g = torch.Generator().manual_seed(0)
    features = torch.randn(64, 2, 128, generator=g).bfloat16()  # what a bf16 backbone returns
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = CASES[name](features)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    exact = CASES[name](features.float())  # the same values, no autocast
    torch.testing.assert_close(loss, exact, rtol=1e-6, atol=1e-6)
