"""Helpers shared by the registry-wide tests: shrink any registered model to a tiny input."""

from __future__ import annotations

import torch

import vitzoo
from vitzoo.models import family_of
from vitzoo.models.mvit_config import MViTConfig
from vitzoo.models.swin_config import SwinConfig

# The nano video models (the image ones, ViT and Swin, excluded by the family's answer, not by name).
VIDEO_NANO = [n for n in vitzoo.list_models("*nano*") if family_of(vitzoo.model_config(n)).modality == "video"]


def tiny_input_overrides(name: str, *, depth: int = 1) -> dict:
    """Shrink a registered model to a tiny input and ``depth`` blocks, keeping its architecture family.

    Plain transformers keep ``depth`` blocks (and one temporal block); hierarchical MViTs keep every stage, each
    with at most ``depth`` blocks and 16 channels per head (their layout: strides, kernels, head counts), on 4
    frames of 32 px (the smallest clip whose grid survives the four stages of the full-size models).
    """
    cfg = vitzoo.model_config(name)
    if isinstance(cfg, SwinConfig):
        return swin_tiny_overrides(cfg, depth=depth)
    if isinstance(cfg, MViTConfig):
        return dict(
            img_size=32,
            num_frames=2 * cfg.patch_stride[0],
            depths=tuple(min(d, depth) for d in cfg.depths),
            widths=tuple(16 * h for h in cfg.num_heads),
            num_classes=3,
        )
    patch = min(cfg.patch_size, 8)
    over = dict(img_size=2 * patch, patch_size=patch, depth=depth, num_classes=3)
    if hasattr(cfg, "num_frames"):
        over.update(num_frames=2 * cfg.tubelet_size, temporal_depth=1)
    return over


def swin_tiny_overrides(cfg: SwinConfig, *, depth: int) -> dict:
    """Two stages of ``depth`` blocks, 2 x 2 spatial windows on a 4 x 4 grid; a video Swin gets 3 token time steps
    in windows of 2 (so the time axis is padded and, with ``depth >= 2``, shifted); an image Swin stays one frame."""
    video = cfg.num_frames > 1
    return dict(
        img_size=4 * cfg.patch_size,
        num_frames=3 * cfg.tubelet_size if video else 1,
        widths=(16, 32),
        depths=(depth, depth),
        num_heads=(2, 2),
        window_size=(min(cfg.window_size[0], 2), 2, 2),
        num_classes=3,
    )


def random_input(model, batch: int = 2) -> torch.Tensor:
    """A random batch of the size the model says it takes."""
    return torch.randn(batch, *model.input_shape)
