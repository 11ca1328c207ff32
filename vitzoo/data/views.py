"""Views of one video: every temporal clip through its own transform, stacked as ``(V, C, T, H, W)``.

A sampler gives ``K`` clips ``(K, T, C, H, W)`` of one video. The transform is applied to each clip
separately, so each clip becomes its own view (its random augmentation drawn once for all its
frames), or ``N`` views for a multi-crop transform. ``transform`` may be one callable for every clip
or a sequence of ``K`` callables (view ``k`` uses ``transform[k]``); a sequence of ``V`` transforms
with a one-clip sampler gives ``V`` views of that same clip. ``None`` keeps the uint8 frames.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from einops import rearrange

from vitzoo.data.errors import DataConfigError

Transform = Callable[[torch.Tensor], torch.Tensor]


def _to_cthw(clip: torch.Tensor) -> torch.Tensor:
    return rearrange(clip, "t c h w -> c t h w")


def view_transforms(transform: Transform | Sequence[Transform] | None, num_clips: int) -> list[Transform | None]:
    """One transform per view: ``[transform] * num_clips``, or the given sequence (checked).

    Raises:
        DataConfigError: ``transform`` is neither a callable, ``None``, nor a non-empty sequence of
            callables, or the sequence's length is neither ``num_clips`` nor usable with a one-clip sampler.
    """
    if transform is None or callable(transform):
        return [transform] * num_clips
    fix = "use a callable, a non-empty sequence of callables (one per view), or None"
    if isinstance(transform, str) or not isinstance(transform, Sequence) or not transform:
        raise DataConfigError(f"transform is a {type(transform).__name__}; {fix}")
    for i, item in enumerate(transform):
        if not callable(item):
            raise DataConfigError(f"transform[{i}] is a {type(item).__name__}, not a transform; {fix}")
    if num_clips not in (1, len(transform)):
        raise DataConfigError(
            f"{len(transform)} transforms (one per view) but the sampler gives num_clips={num_clips} clips; "
            f"use a sampler with num_clips={len(transform)} (or 1, to share one clip between the views)"
        )
    return list(transform)


def count_views(transforms: Sequence[Transform | None]) -> int:
    """Views per video: one per transform, times its ``num_crops`` (1 for transforms without one)."""
    return sum(getattr(t, "num_crops", 1) for t in transforms)


def make_views(clips: torch.Tensor, transforms: Sequence[Transform | None]) -> list[torch.Tensor]:
    """``clips`` ``(K, T, C, H, W)`` -> one output per transform, ``(C, T, H, W)`` or ``(N, C, T, H, W)``."""
    if len(clips) == 1 and len(transforms) > 1:  # one clip shared by several views
        clips = clips.expand(len(transforms), *clips.shape[1:])  # (V, T, C, H, W)
    return [(t or _to_cthw)(clip) for t, clip in zip(transforms, clips, strict=True)]


def stack_views(views: Sequence[torch.Tensor]) -> torch.Tensor:
    """Outputs of :func:`make_views` -> ``(V, C, T, H, W)``, view-major in transform order.

    Raises:
        DataConfigError: the views differ in shape (e.g. transforms with different ``img_size``).
    """
    views = [v if v.ndim == 5 else v.unsqueeze(0) for v in views]  # each (N, C, T, H, W)
    shapes = {tuple(v.shape[1:]) for v in views}
    if len(shapes) > 1:
        raise DataConfigError(
            f"the views of a sample have different shapes {sorted(shapes)}; give every view's transform "
            "the same output size (img_size)"
        )
    return torch.cat(views)  # (V, C, T, H, W)
