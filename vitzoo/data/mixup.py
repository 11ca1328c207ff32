"""Mixup / CutMix for clip batches ``(B, C, T, H, W)`` with label smoothing, via ``timm.data.Mixup``.

timm's CutMix pastes the box with ``x[:, :, y0:y1, x0:x1]``, which on a 5-D clip batch would cut
along (T, H) instead of (H, W). :class:`VideoMixup` therefore folds time into channels,
``(B, C, T, H, W) -> (B, C*T, H, W)``, lets timm mix that 4-D batch, and unfolds it: the mixing
weight and the CutMix box are drawn once per pair and are the same for every frame of a clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from einops import rearrange
from timm.data import Mixup

from vitzoo.data.errors import DataConfigError

MODES = ("batch", "pair", "elem")


@dataclass
class MixupConfig:
    """Arguments of :class:`VideoMixup` (names and defaults as in timm / DeiT recipes).

    Attributes:
        num_classes: size of the soft-target vectors.
        mixup_alpha: Beta(alpha, alpha) for Mixup; 0 disables Mixup.
        cutmix_alpha: Beta(alpha, alpha) for CutMix; 0 disables CutMix.
        prob: probability of mixing a batch at all.
        switch_prob: probability of CutMix instead of Mixup when both are enabled.
        mode: ``"batch"`` (one draw per batch), ``"pair"`` or ``"elem"`` (per sample).
        label_smoothing: smoothing applied to both one-hot targets before mixing.
    """

    num_classes: int
    mixup_alpha: float = 0.8
    cutmix_alpha: float = 1.0
    prob: float = 1.0
    switch_prob: float = 0.5
    mode: str = "batch"
    label_smoothing: float = 0.1


def _check_config(config: MixupConfig) -> None:
    """One-line :class:`DataConfigError` for values timm would reject with an assert or misuse silently."""
    if isinstance(config.num_classes, bool) or not isinstance(config.num_classes, int) or config.num_classes < 2:
        raise DataConfigError(f"mixup: num_classes={config.num_classes!r}; use the number of classes (>= 2)")
    checks = (
        ("mixup_alpha", config.mixup_alpha, 0.0, math.inf, "use >= 0 (0 disables Mixup)"),
        ("cutmix_alpha", config.cutmix_alpha, 0.0, math.inf, "use >= 0 (0 disables CutMix)"),
        ("prob", config.prob, 0.0, 1.0, "use a probability in [0, 1]"),
        ("switch_prob", config.switch_prob, 0.0, 1.0, "use a probability in [0, 1]"),
        ("label_smoothing", config.label_smoothing, 0.0, 1.0, "use a value in [0, 1)"),
    )
    for name, value, low, high, fix in checks:
        if not low <= value <= high or (name == "label_smoothing" and value == 1.0):
            raise DataConfigError(f"mixup: {name}={value!r}; {fix}")
    if config.mode not in MODES:
        raise DataConfigError(f"mixup: mode={config.mode!r}; use one of {MODES}")


class VideoMixup:
    """Mix a clip batch and return soft targets whose rows sum to 1.

    ``mixer(clips, labels) -> (mixed_clips, soft_targets)`` with clips ``(B, C, T, H, W)`` float,
    labels ``(B,)`` int64, soft targets ``(B, num_classes)`` float. The batch size must be even
    (timm's requirement; use ``drop_last=True`` in the loader). Like timm, the clips are mixed in
    place when they are contiguous; the returned tensor is the mixed batch either way.
    """

    def __init__(self, config: MixupConfig) -> None:
        _check_config(config)
        self.config = config
        self._mixup = Mixup(
            mixup_alpha=config.mixup_alpha,
            cutmix_alpha=config.cutmix_alpha,
            prob=config.prob,
            switch_prob=config.switch_prob,
            mode=config.mode,
            label_smoothing=config.label_smoothing,
            num_classes=config.num_classes,
        )

    def __call__(self, clips: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix ``clips`` (B, C, T, H, W) and turn ``labels`` (B,) into soft targets (B, num_classes)."""
        if clips.ndim != 5:
            raise ValueError(f"expected clips (B, C, T, H, W), got shape {tuple(clips.shape)}")
        if clips.shape[0] % 2:
            raise DataConfigError(
                f"Mixup/CutMix needs an even batch, got {clips.shape[0]}; use an even batch_size and drop_last=True"
            )
        channels = clips.shape[1]
        folded = rearrange(clips, "b c t h w -> b (c t) h w")  # one "image" per clip, frames as channels
        folded, targets = self._mixup(folded, labels)
        return rearrange(folded, "b (c t) h w -> b c t h w", c=channels), targets


def make_mixup(
    *,
    num_classes: int,
    mixup_alpha: float = 0.8,
    cutmix_alpha: float = 1.0,
    prob: float = 1.0,
    switch_prob: float = 0.5,
    mode: str = "batch",
    label_smoothing: float = 0.1,
) -> VideoMixup:
    """Keyword-only builder for :class:`VideoMixup` (see :class:`MixupConfig` for the arguments)."""
    return VideoMixup(
        MixupConfig(
            num_classes=num_classes,
            mixup_alpha=mixup_alpha,
            cutmix_alpha=cutmix_alpha,
            prob=prob,
            switch_prob=switch_prob,
            mode=mode,
            label_smoothing=label_smoothing,
        )
    )
