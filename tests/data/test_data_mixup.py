"""Mixup / CutMix on clip batches: soft targets sum to 1, one mix for every frame of a clip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vitzoo.data import make_mixup

K = 5  # classes


def _batch(b=4, t=6, h=16, w=16) -> tuple[torch.Tensor, torch.Tensor]:
    """Clip i, frame t, is the constant 10 * i + t (every frame different, every clip different)."""
    values = 10.0 * torch.arange(b)[:, None] + torch.arange(t)[None, :]  # (B, T)
    clips = values[:, None, :, None, None].expand(b, 3, t, h, w).clone()  # (B, C, T, H, W)
    return clips, torch.arange(b) % K


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize(("mixup_alpha", "cutmix_alpha"), [(0.8, 0.0), (0.0, 1.0), (0.8, 1.0)])
def test_soft_targets_sum_to_one(mode, mixup_alpha, cutmix_alpha):
    np.random.seed(0)
    mixer = make_mixup(num_classes=K, mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, mode=mode)
    for _ in range(10):
        clips, labels = _batch()
        mixed, targets = mixer(clips, labels)
        assert mixed.shape == clips.shape
        assert targets.shape == (4, K) and (targets >= 0).all()
        torch.testing.assert_close(targets.sum(1), torch.ones(4))


def test_label_smoothing_without_mixing():
    mixer = make_mixup(num_classes=K, prob=0.0, label_smoothing=0.1)
    clips, labels = _batch()
    mixed, targets = mixer(clips.clone(), labels)
    torch.testing.assert_close(mixed, clips)
    expected = torch.full((4, K), 0.1 / K)
    expected[torch.arange(4), labels] += 0.9
    torch.testing.assert_close(targets, expected)


def test_mixup_same_weight_for_every_frame():
    np.random.seed(1)
    mixer = make_mixup(num_classes=K, mixup_alpha=0.8, cutmix_alpha=0.0, label_smoothing=0.0)
    clips, labels = _batch()
    mixed, targets = mixer(clips.clone(), labels)
    lam = targets[0, labels[0]].item()  # no smoothing: weight of the sample's own label
    expected = lam * clips + (1 - lam) * clips.flip(0)  # batch mode pairs i with B-1-i
    torch.testing.assert_close(mixed, expected)


def test_cutmix_same_box_for_every_frame():
    np.random.seed(3)
    mixer = make_mixup(num_classes=K, mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0)
    for _ in range(10):
        clips, labels = _batch(b=2, t=6, h=32, w=32)
        mixed, targets = mixer(clips.clone(), labels)
        pasted = mixed[0] != clips[0]  # (C, T, H, W): where clip 1 was pasted into clip 0
        box = pasted[0, 0]  # (H, W)
        assert torch.equal(pasted, box.expand_as(pasted)), "CutMix box differs between frames or channels"
        torch.testing.assert_close(mixed[0][pasted], clips[1][pasted])  # pasted frame t comes from frame t
        lam = targets[0, labels[0]].item()
        assert box.float().mean().item() == pytest.approx(1 - lam, abs=1e-6)  # area matches the label weight


def test_rejects_odd_batch_and_wrong_rank():
    mixer = make_mixup(num_classes=K)
    clips, labels = _batch(b=3)
    with pytest.raises(ValueError, match="even"):
        mixer(clips, labels)
    with pytest.raises(ValueError, match="B, C, T, H, W"):
        mixer(clips[:2, :, 0], labels[:2])
