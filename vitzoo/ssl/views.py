"""Augmented views for self-supervised learning, on ``torchvision.transforms.v2``.

One *view* is one random draw of an augmentation pipeline:

* images: :class:`ImageViews` turns one image into ``V`` views ``(V, C, H, W)``, view ``v`` drawn from
  ``transforms[v]`` (SimCLR: the same pipeline twice; BYOL: two pipelines, :func:`byol_augment`);
* videos (CVRL, Qian et al., 2021, https://arxiv.org/abs/2008.03800): the dataset decodes ``rho`` clips per
  video (:class:`vitzoo.ssl.temporal.CVRLSampler` picks their start frames) and gives each clip its own
  spatial augmentation ``(V, T, C, H, W) -> (V, C, T, H, W)`` (:mod:`vitzoo.data.views`, each pipeline
  wrapped in a :class:`~vitzoo.data.transforms.ClipTransform`). Inside a clip the draw is shared by all
  frames (temporally consistent: v2 transforms treat a ``tv_tensors.Video`` as one sample), so crop, flip,
  jitter, grayscale, blur and solarisation are identical on every frame of a view and independent across views.

The pipelines (:func:`ssl_augment` and its presets) take uint8 input: a PIL image, a ``(C, H, W)`` tensor or
a ``tv_tensors.Video`` ``(T, C, H, W)``, and end with float conversion and normalisation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms import v2

Floats3 = Sequence[float]


def blur_kernel_size(img_size: int | tuple[int, int]) -> int:
    """SimCLR's Gaussian-blur kernel: 10% of the image side (the shorter one), made odd (23 at 224 px)."""
    side = min(img_size) if isinstance(img_size, tuple | list) else img_size
    return max(3, int(0.1 * side) // 2 * 2 + 1)


class RandomGrayscale(nn.Module):
    """Grayscale (three equal channels, ITU-R 601-2 luma) with probability ``p``, one draw per call: images and
    videos alike (a clip's frames all or none).

    ``torchvision.transforms.v2.RandomGrayscale`` (and ``v2.Grayscale``) return a ``tv_tensors.Video`` unchanged
    (torchvision 0.29), which would silently keep every video view in colour.
    """

    def __init__(self, p: float = 0.1) -> None:
        super().__init__()
        self.p = p

    def forward(self, inpt: torch.Tensor) -> torch.Tensor:
        """``(..., 3, H, W)`` image or video (uint8 or float) -> the same, gray with probability ``p``."""
        if not torch.rand(()) < self.p:
            return inpt
        gray = v2.functional.rgb_to_grayscale(inpt.as_subclass(torch.Tensor), num_output_channels=3)
        return tv_tensors.wrap(gray, like=inpt) if isinstance(inpt, tv_tensors.TVTensor) else gray

    def extra_repr(self) -> str:
        return f"p={self.p}"


def ssl_augment(
    *,
    img_size: int | tuple[int, int],
    mean: Floats3,
    std: Floats3,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    hflip: bool = True,
    jitter: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 0.2),
    jitter_p: float = 0.8,
    grayscale_p: float = 0.2,
    blur_p: float = 0.5,
    blur_sigma: tuple[float, float] = (0.1, 2.0),
    solarize_p: float = 0.0,
) -> v2.Compose:
    """The SimCLR / BYOL augmentation family (Chen et al., 2020, appendix A; Grill et al., 2020, table 6).

    Random resized crop (``scale``, ``ratio``) to ``img_size`` (a side, or ``(H, W)``) -> horizontal flip (p = 0.5;
    ``hflip=False`` for direction-sensitive data) -> colour jitter (brightness, contrast, saturation, hue =
    ``jitter``) with probability ``jitter_p`` -> grayscale with ``grayscale_p`` -> Gaussian blur (kernel 10% of
    the shorter side, sigma in ``blur_sigma``) with ``blur_p`` -> solarisation (threshold 128 of 255) with
    ``solarize_p`` -> float in [0, 1] -> normalise by ``mean``/``std``.
    """
    probabilities = {"jitter_p": jitter_p, "grayscale_p": grayscale_p, "blur_p": blur_p, "solarize_p": solarize_p}
    for name, p in probabilities.items():
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
    size = img_size if isinstance(img_size, int) else tuple(img_size)
    steps: list[v2.Transform] = [
        v2.ToImage(),  # PIL / pure tensor -> tv_tensors.Image; a tv_tensors.Video passes through
        v2.RandomResizedCrop(size, scale=scale, ratio=ratio, antialias=True),
    ]
    if hflip:
        steps.append(v2.RandomHorizontalFlip(p=0.5))
    steps += [
        v2.RandomApply([v2.ColorJitter(*jitter)], p=jitter_p),
        RandomGrayscale(p=grayscale_p),
        v2.RandomApply([v2.GaussianBlur(blur_kernel_size(img_size), sigma=blur_sigma)], p=blur_p),
        v2.RandomSolarize(threshold=128, p=solarize_p),  # on uint8, before the float conversion
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(mean), std=list(std)),
    ]
    return v2.Compose(steps)


def simclr_augment(
    *, img_size: int, mean: Floats3, std: Floats3, strength: float = 1.0, blur_p: float = 0.5
) -> v2.Compose:
    """SimCLR's views: colour jitter ``(0.8 s, 0.8 s, 0.8 s, 0.2 s)`` for strength ``s`` (1.0 on ImageNet)."""
    jitter = (0.8 * strength, 0.8 * strength, 0.8 * strength, 0.2 * strength)
    return ssl_augment(img_size=img_size, mean=mean, std=std, jitter=jitter, blur_p=blur_p)


def byol_augment(*, img_size: int, mean: Floats3, std: Floats3) -> tuple[v2.Compose, v2.Compose]:
    """BYOL's asymmetric pair: jitter ``(0.4, 0.4, 0.2, 0.1)``; blur p = 1.0 / 0.1; solarisation p = 0.0 / 0.2."""
    common = dict(img_size=img_size, mean=mean, std=std, jitter=(0.4, 0.4, 0.2, 0.1))
    return (
        ssl_augment(**common, blur_p=1.0, solarize_p=0.0),
        ssl_augment(**common, blur_p=0.1, solarize_p=0.2),
    )


def cvrl_augment(*, img_size: int, mean: Floats3, std: Floats3) -> v2.Compose:
    """Per-clip spatial augmentation for CVRL: SimCLR's family with crop area in [0.3, 1] and aspect in [0.5, 2].

    CVRL applies crop, flip, colour jitter (p = 0.8), grayscale (p = 0.2) and blur consistently over the
    frames of a clip; the smaller crop-area range keeps enough of each frame for the motion to stay visible.
    """
    return ssl_augment(
        img_size=img_size, mean=mean, std=std, scale=(0.3, 1.0), ratio=(0.5, 2.0), jitter=(0.4, 0.4, 0.4, 0.1)
    )


class ImageViews:
    """One image -> ``V = len(transforms)`` augmented views ``(V, C, H, W)``; view ``v`` uses ``transforms[v]``.

    ``ImageViews([aug] * 2)`` gives SimCLR's two views, ``ImageViews(byol_augment(...))`` BYOL's pair.
    """

    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = list(transforms)
        if not self.transforms:
            raise ValueError("give at least one view transform")

    def __call__(self, image) -> torch.Tensor:
        views = [t(image).as_subclass(torch.Tensor) for t in self.transforms]  # V x (C, H, W)
        return torch.stack(views)  # (V, C, H, W)

    def __repr__(self) -> str:
        return f"ImageViews(num_views={len(self.transforms)})"
