"""Clip transforms on ``torchvision.transforms.v2``: one random draw per clip, output ``(C, T, H, W)``.

A clip enters as a uint8 tensor ``(T, C, H, W)`` (``VideoReader.get(..., layout="TCHW")``) and is
wrapped as ``tv_tensors.Video``, which v2 transforms treat as one video: crop box, scale, flip and
RandAugment operations are drawn once and applied to every frame. The result is a float tensor in
the torchvision video-model layout ``(C, T, H, W)``, normalised with the model's mean/std, or
``(num_crops, C, T, H, W)`` for multi-crop evaluation.

Options are checked when a transform is built: a bad ``img_size``, ``scale`` (``0 < min <= max <= 1``),
``ratio`` (``0 < min <= max``), ``mean``/``std`` (one number per channel, ``std > 0``) or RandAugment spec raises
:class:`~vitzoo.data.errors.DataConfigError` naming the value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import torch
from einops import rearrange
from torchvision import tv_tensors
from torchvision.transforms import v2

from vitzoo.data.errors import DataConfigError
from vitzoo.schema import check_min_max

Floats3 = Sequence[float]


def parse_randaugment(spec: str) -> v2.RandAugment:
    """Build ``v2.RandAugment`` from a timm-style string ``"rand-m{magnitude}-n{num_ops}"``.

    Only the ``m`` (magnitude, 0..30) and ``n`` (number of ops) keys are understood; anything else
    (timm's ``mstd``, ``inc``, ...) raises ``DataConfigError`` rather than being silently ignored.
    """
    parts = spec.split("-")
    if parts[0] != "rand":
        raise DataConfigError(f"randaugment spec {spec!r} must start with 'rand-', e.g. 'rand-m9-n2'")
    magnitude, num_ops = 9, 2
    for part in parts[1:]:
        match = re.fullmatch(r"([a-z]+)(\d+)", part)
        if match is None or match.group(1) not in ("m", "n"):
            raise DataConfigError(f"unsupported randaugment key {part!r} in {spec!r}; supported: m<int>, n<int>")
        if match.group(1) == "m":
            magnitude = int(match.group(2))
        else:
            num_ops = int(match.group(2))
    if not 0 <= magnitude <= 30:
        raise DataConfigError(f"randaugment magnitude must be in [0, 30], got {magnitude} in {spec!r}")
    return v2.RandAugment(num_ops=num_ops, magnitude=magnitude, interpolation=v2.InterpolationMode.BILINEAR)


def three_crop(clip: torch.Tensor, size: int) -> torch.Tensor:
    """Three ``size x size`` crops spaced along the longer side (start, centre, end).

    ``clip`` is ``(..., H, W)`` with ``min(H, W) == size`` (a short-side resize to ``size`` first);
    returns ``(3, ..., size, size)``. The crops are left/centre/right for landscape frames and
    top/centre/bottom for portrait ones (SlowFast / mmaction ``ThreeCrop``).
    """
    height, width = clip.shape[-2:]
    if min(height, width) != size:
        raise ValueError(f"three_crop expects the short side to equal {size}, got {height}x{width}")
    long_side = max(height, width)
    starts = (0, (long_side - size) // 2, long_side - size)
    if height >= width:
        crops = [clip[..., s : s + size, :] for s in starts]
    else:
        crops = [clip[..., :, s : s + size] for s in starts]
    return torch.stack(crops)


class ClipTransform:
    """A v2 pipeline applied to a clip as one ``tv_tensors.Video``, then laid out ``(C, T, H, W)``.

    Args:
        pipeline: v2 transform taking a ``Video`` ``(T, C, H, W)``.
        num_crops: 1 (output ``(C, T, H, W)``) or 3 (three-crop, output ``(3, C, T, H, W)``).
        crop_size: side of the three crops (needed when ``num_crops == 3``).
    """

    def __init__(self, pipeline: v2.Transform, *, num_crops: int = 1, crop_size: int | None = None) -> None:
        if num_crops not in (1, 3):
            raise DataConfigError(f"ClipTransform: num_crops={num_crops!r}; use 1 or 3")
        if num_crops == 3 and crop_size is None:
            raise DataConfigError("ClipTransform: three-crop (num_crops=3) needs crop_size")
        self.pipeline = pipeline
        self.num_crops = num_crops
        self.crop_size = crop_size

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        """``(T, C, H, W)`` uint8 -> ``(C, T, h, w)`` float, or ``(3, C, T, h, w)`` for three-crop."""
        if clip.ndim != 4 or clip.shape[1] not in (1, 3):
            raise ValueError(f"expected a (T, C, H, W) clip with C in (1, 3), got shape {tuple(clip.shape)}")
        out = self.pipeline(tv_tensors.Video(clip)).as_subclass(torch.Tensor)  # (T, C, h, w)
        if self.num_crops == 3:
            out = three_crop(out, self.crop_size)  # (3, T, C, s, s)
        return rearrange(out, "... t c h w -> ... c t h w").contiguous()

    def __repr__(self) -> str:
        return f"ClipTransform(num_crops={self.num_crops}, pipeline={self.pipeline})"


def _check_size(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataConfigError(f"{owner}: {name}={value!r}; use an integer number of pixels >= 1")


def _check_mean_std(owner: str, mean: Floats3, std: Floats3) -> None:
    for name, values in (("mean", mean), ("std", std)):
        try:
            floats = [float(v) for v in values]
        except (TypeError, ValueError):
            floats = []
        if len(floats) not in (1, 3) or not all(math.isfinite(v) for v in floats):
            raise DataConfigError(f"{owner}: {name}={values!r}; use one number per channel (3 for RGB, 1 for gray)")
    if not all(float(v) > 0 for v in std):
        raise DataConfigError(f"{owner}: std={list(std)!r}; every channel's std must be > 0")


def _to_float_normalized(mean: Floats3, std: Floats3) -> list[v2.Transform]:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std))]


def train_transform(
    *,
    img_size: int,
    mean: Floats3,
    std: Floats3,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    hflip: bool = True,
    randaugment: str | None = None,
) -> ClipTransform:
    """Training clip transform: RandomResizedCrop -> horizontal flip -> RandAugment -> normalise.

    Every random choice is made once per clip and applied to all its frames.

    Args:
        img_size: output side (square).
        mean, std: per-channel normalisation for 0..1 pixel values (the model's preprocessing).
        scale, ratio: RandomResizedCrop area fraction and aspect-ratio ranges.
        hflip: random horizontal flip with p=0.5; set False for direction-sensitive labels
            (Something-Something "pushing left to right", the synthetic motion dataset).
        randaugment: ``None`` or a timm-style spec such as ``"rand-m9-n2"`` (see :func:`parse_randaugment`).

    Returns:
        a callable ``(T, C, H, W) uint8 -> (C, T, img_size, img_size) float32``.
    """
    _check_size("train_transform", "img_size", img_size)
    _check_mean_std("train_transform", mean, std)
    area, aspect = "crop area as a fraction of the frame", "crop aspect ratio width/height"
    scale = check_min_max("train_transform: scale", scale, upper=1.0, meaning=area, error=DataConfigError)
    ratio = check_min_max("train_transform: ratio", ratio, meaning=aspect, error=DataConfigError)
    steps: list[v2.Transform] = [v2.RandomResizedCrop(img_size, scale=scale, ratio=ratio, antialias=True)]
    if hflip:
        steps.append(v2.RandomHorizontalFlip(p=0.5))
    if randaugment is not None:
        steps.append(parse_randaugment(randaugment))  # on uint8, before normalisation
    steps += _to_float_normalized(mean, std)
    return ClipTransform(v2.Compose(steps))


def eval_transform(
    *,
    img_size: int,
    mean: Floats3,
    std: Floats3,
    num_crops: int = 1,
    resize: int | None = None,
) -> ClipTransform:
    """Evaluation clip transform: short-side resize, then a centre crop or three crops, normalise.

    Args:
        img_size: side of each square crop.
        mean, std: per-channel normalisation for 0..1 pixel values.
        num_crops: 1 (centre crop, output ``(C, T, S, S)``) or 3 (three crops along the long side,
            output ``(3, C, T, S, S)``; the short side is resized to ``img_size`` so the crops cover
            the whole frame).
        resize: short side before the centre crop (default ``img_size``); single-crop only.
    """
    _check_size("eval_transform", "img_size", img_size)
    _check_mean_std("eval_transform", mean, std)
    if num_crops == 3:
        if resize not in (None, img_size):
            raise DataConfigError("eval_transform: three-crop resizes the short side to img_size; do not pass resize")
        steps = [v2.Resize(img_size, antialias=True), *_to_float_normalized(mean, std)]
        return ClipTransform(v2.Compose(steps), num_crops=3, crop_size=img_size)
    if num_crops != 1:
        raise DataConfigError(f"eval_transform: num_crops={num_crops!r}; use 1 or 3")
    short = img_size if resize is None else resize
    _check_size("eval_transform", "resize", short)
    if short < img_size:
        raise DataConfigError(
            f"eval_transform: resize={short} is smaller than the crop img_size={img_size}; use resize >= img_size"
        )
    steps = [v2.Resize(short, antialias=True), v2.CenterCrop(img_size), *_to_float_normalized(mean, std)]
    return ClipTransform(v2.Compose(steps))
