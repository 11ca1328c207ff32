"""Initialise a Video Swin from an image (2-D) Swin, as the Video Swin paper does (Liu et al., 2022, Sec. 3.3).

The source may be a torchvision ``SwinTransformer`` (``swin_t/s/b``), a timm ``SwinTransformer``
(``swin_tiny_patch4_window7_224``, ...), a vitzoo one-frame Swin (``swin_*``: ``tubelet_size=1``, window
``(1, h, w)``), or a state dict in any of those layouts. It is first brought to vitzoo's one-frame layout
(:func:`image_swin_state`, which says what it recognised), then :func:`inflate_swin_state` applies two fix-ups:

* the patch kernel ``(D, C, 1, p, p)`` is inflated over the ``t`` frames of a tubelet: ``"average"`` (the paper's:
  repeated and divided by ``t``) or ``"central"`` (on the middle frame, zeros elsewhere); either way a clip of
  identical frames embeds like one frame (``"repeat"``, undivided, scales it by ``t``);
* each relative-position bias table, one row per 2-D offset ``(dh, dw)``, is resampled (timm's
  ``resize_rel_pos_bias_table``) if the spatial window differs, then repeated for each of the ``2 Wt - 1``
  temporal offsets (the same bias at every ``dt``).

Everything else (norms, attention and MLP weights, patch merging) is copied. On a clip of identical frames the
inflated model then computes what the image model computes on one frame (exactly, where no padding enters a
window, e.g. 224 px and a number of token steps that fills whole temporal windows): every temporal copy of a key
gets the same score, so attention weights, and all that follows, are those of the image.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from typing import Any

import torch
from timm.layers import resize_rel_pos_bias_table
from torch import nn

from vitzoo.checkpoints.adapters import adapter
from vitzoo.checkpoints.inflate import inflate_patch_embed
from vitzoo.errors import CheckpointFileError
from vitzoo.models.swin_config import ImageSwinConfig, SwinConfig

log = logging.getLogger(__name__)

TABLE = "relative_position_bias_table"
KERNEL = "patch_embed.proj.weight"


def timm_swin_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A timm ``SwinTransformer`` state dict with vitzoo's keys (``head.fc`` -> ``head``, kernel gets a time axis).

    Checkpoints of the original repository, whose stages end with their patch merging, are renumbered as timm's
    ``checkpoint_filter_fn`` does (timm starts stages with it). Buffers (``relative_position_index``,
    ``attn_mask``) are dropped.
    """
    old_layout = "layers.0.downsample.reduction.weight" in state
    out = {}
    for key, value in state.items():
        if key.endswith(("relative_position_index", "attn_mask")):
            continue
        if old_layout:
            key = re.sub(r"layers\.(\d+)\.downsample", lambda m: f"layers.{int(m[1]) + 1}.downsample", key)
        key = key.replace("head.fc.", "head.")
        out[key] = value.unsqueeze(2) if key == KERNEL and value.ndim == 4 else value
    return out


def _module_state(source: nn.Module) -> tuple[dict[str, torch.Tensor], str]:
    from vitzoo.checkpoints.convert_torchvision_swin import torchvision_swin_state
    from vitzoo.models.swin import VideoSwin

    name, lib = type(source).__name__, type(source).__module__.split(".")[0]
    if isinstance(source, VideoSwin):
        return source.state_dict(), f"vitzoo {source.arch_name or 'VideoSwin'}"
    if (lib, name) == ("torchvision", "SwinTransformer"):
        from vitzoo.checkpoints.convert_torchvision_swin import config_from_torchvision_swin

        config_from_torchvision_swin(source)  # raises naming what vitzoo does not implement
        return torchvision_swin_state(source.state_dict(), image=True), "torchvision SwinTransformer"
    if (lib, name) == ("timm", "SwinTransformer"):
        return timm_swin_state(source.state_dict()), "timm SwinTransformer"
    raise TypeError(f"expected an image Swin (torchvision or timm SwinTransformer, or a vitzoo Swin); got {lib} {name}")


def image_swin_state(source: nn.Module | dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """``source`` (module or state dict) in vitzoo's one-frame layout, and a description of what it was."""
    from vitzoo.checkpoints.convert_torchvision_swin import torchvision_swin_state

    if isinstance(source, nn.Module):
        return _module_state(source)
    kernel = source.get(KERNEL)
    if "features.0.0.weight" in source:
        return torchvision_swin_state(source, image=True), "a torchvision SwinTransformer state dict (features.*)"
    if kernel is not None and kernel.ndim == 4 and any(k.endswith(TABLE) for k in source):
        return timm_swin_state(source), "a timm SwinTransformer state dict (layers.*, 2-D patch kernel)"
    if kernel is not None and kernel.ndim == 5 and kernel.shape[2] == 1:
        return dict(source), "a vitzoo one-frame Swin state dict"
    raise CheckpointFileError(
        "not an image Swin state dict: expected torchvision's features.0.0.weight, or a 2-D (timm) or one-frame "
        f"(vitzoo) {KERNEL}; got {KERNEL} of shape {None if kernel is None else tuple(kernel.shape)}"
    )


def is_image_swin_state(state: dict[str, torch.Tensor]) -> bool:
    """Whether ``state`` is a 2-D / one-frame Swin in any layout :func:`image_swin_state` reads."""
    try:
        image_swin_state(state)
    except ValueError:
        return False
    return True


def inflate_table(table: torch.Tensor, *, source_window: tuple[int, int], window: tuple[int, int, int]) -> torch.Tensor:
    """A 2-D bias table ``((2h-1)(2w-1), H)`` -> a 3-D one ``((2Wt-1)(2Wh-1)(2Ww-1), H)`` for ``window``."""
    wt, wh, ww = window
    if tuple(source_window) != (wh, ww):
        table = resize_rel_pos_bias_table(
            table, new_window_size=(wh, ww), new_bias_shape=((2 * wh - 1) * (2 * ww - 1), table.shape[1]),
            old_window_size=tuple(source_window),
        )  # fmt: skip
    return table.repeat(2 * wt - 1, 1)  # row dt * (2Wh-1)(2Ww-1) + (dh, dw): the 2-D table at every dt


def inflate_swin_state(
    state: dict[str, torch.Tensor],
    cfg: SwinConfig,
    *,
    source_window: tuple[int, int] | None = None,
    tubelet_init: str = "average",
) -> dict[str, torch.Tensor]:
    """vitzoo one-frame Swin tensors -> tensors of the Video Swin ``cfg`` describes (see the module docstring).

    ``source_window``: the image model's ``(h, w)`` window (default: square, read off the first table);
    ``tubelet_init``: how the patch kernel is inflated (``average``, ``central`` or ``repeat``, see
    :func:`vitzoo.checkpoints.inflate.inflate_patch_embed`). The result is an identity for a one-frame target
    (``tubelet_size=1``, window ``(1, h, w)``).
    """
    kernel = state[KERNEL]
    if kernel.ndim != 5 or kernel.shape[2] != 1:
        raise ValueError(f"{KERNEL} of an image Swin must be (D, C, 1, p, p); got {tuple(kernel.shape)}")
    if source_window is None:
        rows = next(v.shape[0] for k, v in state.items() if k.endswith(TABLE))
        side = math.isqrt(rows)
        if side * side != rows:
            raise ValueError(f"cannot tell the window of a {rows}-row bias table; pass source_window=(h, w)")
        source_window = ((side + 1) // 2,) * 2
    t = cfg.tubelet_size
    out = {}
    for key, value in state.items():
        if key == KERNEL:
            out[key] = inflate_patch_embed(value[:, :, 0], tubelet_size=t, mode=tubelet_init)  # (D, C, t, p, p)
        elif key.endswith(TABLE):
            out[key] = inflate_table(value, source_window=source_window, window=cfg.window_size)
        else:
            out[key] = value
    log.info(
        "image Swin -> video: patch kernel over %d frames (%s); bias tables %s -> %s, tiled over %d temporal offsets",
        t, tubelet_init, source_window, cfg.window_size[1:], 2 * cfg.window_size[0] - 1,
    )  # fmt: skip
    return out


def video_swin_from_image(
    state: dict[str, torch.Tensor],
    cfg: SwinConfig,
    *,
    source_cfg: Any = None,
    source: str,
    tubelet_init: str = "average",
) -> dict[str, torch.Tensor]:
    """One-frame-layout ``state`` (from :func:`image_swin_state`) inflated for ``cfg``, facts checked first."""
    if isinstance(source_cfg, SwinConfig):
        facts = ("widths", "depths", "num_heads", "patch_size", "mlp_ratio", "in_chans", "qkv_bias", "patch_norm")
        diffs = {
            f: (getattr(source_cfg, f), getattr(cfg, f)) for f in facts if getattr(source_cfg, f) != getattr(cfg, f)
        }
        if diffs:
            theirs = ", ".join(f"{k}={a}" for k, (a, _) in diffs.items())
            ours = ", ".join(f"{k}={b}" for k, (_, b) in diffs.items())
            raise CheckpointFileError(
                f"cannot initialise from {source}: the image Swin has {theirs} but the model {ours}"
            )
        return inflate_swin_state(
            state, cfg, source_window=tuple(source_cfg.window_size[1:]), tubelet_init=tubelet_init
        )
    return inflate_swin_state(state, cfg, tubelet_init=tubelet_init)


def inflate_image_swin(
    source: nn.Module | dict[str, torch.Tensor], model: nn.Module, *, tubelet_init: str = "average"
) -> nn.Module:
    """Load an image Swin (torchvision, timm, vitzoo, or a state dict of one) into the Video Swin ``model``, in place.

    ``tubelet_init``: the patch kernel's inflation (the paper's ``average`` by default). A head of another class
    count is left as the model's (re-initialised); anything else that does not fit raises.
    """
    from vitzoo.checkpoints.load import drop_mismatched_head, load_checked

    state, what = image_swin_state(source)
    log.info("initialising %s from %s", type(model).__name__, what)
    source_cfg = getattr(source, "cfg", None)
    state = video_swin_from_image(state, model.cfg, source_cfg=source_cfg, source=what, tubelet_init=tubelet_init)
    state = drop_mismatched_head(state, model)
    if "head.weight" not in state and "head.weight" in model.state_dict():
        state = {**state, **{k: v for k, v in model.state_dict().items() if k.startswith("head.")}}
    load_checked(model, state, source=what)
    return model


def _is_image(cfg: SwinConfig) -> bool:
    return cfg.tubelet_size == 1 and cfg.window_size[0] == 1


@adapter(SwinConfig)
def adapt_swin_checkpoint(
    state: dict[str, torch.Tensor], source_cfg: Any, cfg: SwinConfig, *, source: str, tubelet_init: str = "average"
) -> tuple[dict[str, torch.Tensor], Any]:
    """What ``vitzoo.checkpoints.load_pretrained`` loads into a Swin of ``cfg``: ``(state, source config)``.

    An image Swin (a vitzoo one-frame file into a video model, or torchvision / timm 2-D weights) is inflated, its
    patch kernel as ``tubelet_init`` says (its config is then no longer the weights', so None is returned for it);
    torchvision ``SwinTransformer3d`` weights get vitzoo's keys; anything else is returned as it is.
    """
    from vitzoo.checkpoints.convert_torchvision_swin import torchvision_swin_state

    if isinstance(source_cfg, SwinConfig):
        if _is_image(source_cfg) and not _is_image(cfg):
            log.info("%s is a one-frame (image) Swin: inflating it into the video model", source)
            inflated = video_swin_from_image(
                state, cfg, source_cfg=source_cfg, source=source, tubelet_init=tubelet_init
            )
            return inflated, None
        one_frame = _is_image(source_cfg) and source_cfg.num_frames == 1
        if isinstance(cfg, ImageSwinConfig) and not isinstance(source_cfg, ImageSwinConfig) and one_frame:
            # a file saved before image Swins had their own config: the same tensors, read as the image model's
            fields = {f.name: getattr(source_cfg, f.name) for f in dataclasses.fields(source_cfg)}
            source_cfg = ImageSwinConfig(**fields)
        return state, source_cfg
    if source_cfg is not None:
        return state, source_cfg
    if "features.0.0.norm1.weight" in state:
        log.info("%s: torchvision SwinTransformer3d keys (features.*) mapped to vitzoo's", source)
        return torchvision_swin_state(state, image=False), None
    if is_image_swin_state(state):
        image_state, what = image_swin_state(state)
        log.info("%s is %s: inflating it into the video model", source, what)
        return inflate_swin_state(image_state, cfg, tubelet_init=tubelet_init), None
    return state, source_cfg
