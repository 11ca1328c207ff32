"""Initialise a video MViTv2 from timm's image MViTv2 (``mvitv2_tiny`` ... ``mvitv2_huge_cls``).

vitzoo's MViT uses timm's parameter names, so most tensors copy unchanged. The named fix-ups:

- ``patch_embed.proj.weight``: the 2-D stem kernel ``(D, C, 7, 7)`` inflated over time to ``(D, C, 3, 7, 7)``
  (:func:`~vitzoo.checkpoints.inflate.inflate_patch_embed`; ``central`` by default);
- ``attn.pool_{q,k,v}.weight``: the 2-D depthwise pooling kernels ``(d, 1, 3, 3)`` inflated the same way to
  ``(d, 1, 3, 3, 3)``;
- ``attn.rel_pos_h`` / ``rel_pos_w``: reused (linearly resampled when the video grid needs another length);
- ``attn.rel_pos_t``: new, **zero** (the model starts without a temporal bias);
- ``head.*``: copied only when the class counts agree.

What does not map: the temporal extent of every kernel (there is none in the image model: central inflation
puts the 2-D kernel on the middle frame and zeros elsewhere), the temporal relative table, a class token the
image model lacks (timm's ``mvitv2_tiny/small/base/large`` have none; the ``*_cls`` ones do), and any
difference in pooling *strides*, which carry no weights: timm's image models pool keys and values with adaptive
stride ``4 x 4`` at the first stage where the published video models use ``1 x 8 x 8``, and they add the class
token to the pooling residual (``residual_with_cls=True``) where torchvision's video models do not. So the
weights of ``mvitv2_small`` fit ``mvitv2_small_16x4`` key for key, but the two compute different functions.

With matching strides and residual rule (a video config built to mirror the image one) and no class token,
central inflation makes the video model reproduce the image model exactly on a clip of identical frames: every
temporal convolution sees the frame itself at its middle tap and zeros elsewhere, and attention over ``T``
identical copies of each key gives the same weighted average as over one (the temporal bias, whatever its
values, shifts all keys of a time step alike and cancels in the softmax). With a class token that holds only for
a single token time step: its key appears once against ``T`` copies of every grid key, which moves attention
weight from the class token to the grid by a factor ``T``. ``tests/checkpoints/test_mvit_image_init.py`` checks these.
"""

from __future__ import annotations

import logging
import re

import torch
from torch import nn

from vitzoo.checkpoints.checked import load_checked
from vitzoo.checkpoints.inflate import inflate_patch_embed
from vitzoo.checkpoints.vit_to_video import InitReport
from vitzoo.errors import CheckpointFileError
from vitzoo.layers.rel_pos import resize_table

log = logging.getLogger(__name__)

_INFLATED = re.compile(r"^(patch_embed\.proj|stages\.\d+\.blocks\.\d+\.attn\.pool_[qkv])\.weight$")
_SPATIAL_TABLE = re.compile(r"\.attn\.rel_pos_[hw]$")
_TEMPORAL_TABLE = re.compile(r"\.attn\.rel_pos_t$")
_IMAGE_ONLY = ("pos_embed",)  # an absolute 2-D table (timm's use_abs_pos) has no counterpart in a relative MViTv2


def image_state(source: nn.Module | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict of a timm ``MultiScaleVit`` (or the dict itself), ``head.fc.*`` renamed to ``head.*``."""
    state = source.state_dict() if isinstance(source, nn.Module) else dict(source)
    return {re.sub(r"^head\.fc\.", "head.", k): v for k, v in state.items()}


def mvit_image_to_video(
    source: nn.Module | dict[str, torch.Tensor], model: nn.Module, *, inflate: str = "central"
) -> tuple[dict[str, torch.Tensor], InitReport]:
    """A complete state dict for the video ``model`` (a vitzoo ``MViT``) from a timm image MViTv2.

    Every key of ``model`` whose counterpart exists is taken from the image model (copied, inflated or
    resampled); the temporal tables are zeroed; the rest keep ``model``'s values and are reported as ``new``.
    A layout that does not fit (other depths, widths or heads) raises naming the first key that differs.
    """
    image = image_state(source)
    target = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    report = InitReport()
    for key, value in target.items():
        src = image.get(key)
        if _TEMPORAL_TABLE.search(key):
            out[key] = torch.zeros_like(value)
            report.zeroed.append(key)
        elif src is None:
            if key.startswith("stages."):
                raise CheckpointFileError(f"the image model has no {key!r}: its stages, depths or pooling differ")
            out[key] = value
            report.new.append(key)
        elif _INFLATED.match(key) and src.ndim == 4:
            out[key] = inflate_patch_embed(src, tubelet_size=value.shape[2], mode=inflate)
            report.inflated.append(key)
        elif _SPATIAL_TABLE.search(key) and src.shape[1:] == value.shape[1:] and src.shape != value.shape:
            out[key] = resize_table(src, value.shape[0]).detach().clone()
            report.resampled.append(key)
        elif src.shape == value.shape:
            out[key] = src.clone()
            report.copied.append(key)
        elif key.startswith("head."):
            out[key] = value
            report.new.append(key)
        else:
            raise CheckpointFileError(
                f"{key}: the image model has shape {tuple(src.shape)}, the video model {tuple(value.shape)}; "
                "their widths or heads differ"
            )
    report.dropped = sorted(k for k in image if k not in target or k in _IMAGE_ONLY)
    return out, report


def init_from_image(model: nn.Module, source: nn.Module | dict[str, torch.Tensor], *, inflate: str = "central"):
    """Load a timm image MViTv2 into the video ``model`` in place (see :func:`mvit_image_to_video`); returns the
    :class:`~vitzoo.checkpoints.vit_to_video.InitReport` after logging it."""
    state, report = mvit_image_to_video(source, model, inflate=inflate)
    load_checked(model, state, source="timm image MViTv2")
    report.log(log)
    return report
