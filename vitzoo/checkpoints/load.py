"""Loading weights into a built model, with every mismatch reported by name."""

from __future__ import annotations

import logging
import os

import torch
from torch import nn

from vitzoo.checkpoints.inflate import infer_vit_layout
from vitzoo.checkpoints.io import describe, read_state_dict, resolve_weights
from vitzoo.checkpoints.vit_to_video import vit_to_video
from vitzoo.layers.pos_embed import resample_pos_embed

log = logging.getLogger(__name__)


def is_image_checkpoint(state_dict: dict[str, torch.Tensor]) -> bool:
    """True when ``patch_embed.proj.weight`` is a 2-D convolution kernel ``(D, C, p, p)``."""
    weight = state_dict.get("patch_embed.proj.weight")
    return weight is not None and weight.ndim == 4


def drop_mismatched_head(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Remove ``head.*`` from ``state_dict`` when its class count differs from the model's, saying so."""
    target = model.state_dict()
    src, dst = state_dict.get("head.weight"), target.get("head.weight")
    if src is not None and (dst is None or src.shape != dst.shape):
        log.info(
            "head re-initialised: checkpoint has %d classes, model has %d",
            src.shape[0], dst.shape[0] if dst is not None else 0,
        )  # fmt: skip
        return {k: v for k, v in state_dict.items() if not k.startswith("head.")}
    return state_dict


def adapt_vit_pos_embed(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Resample an image checkpoint's positional table to the model's grid when they differ."""
    target = model.state_dict()["pos_embed"]
    if state_dict["pos_embed"].shape == target.shape:
        return state_dict
    layout = infer_vit_layout(state_dict)
    prefix = layout.num_prefix_tokens if layout.pos_embed_has_prefix else 0
    grid = model.cfg.grid_size
    log.info("pos_embed resampled from a %dx%d to a %dx%d grid", layout.grid, layout.grid, grid, grid)
    pe = resample_pos_embed(
        state_dict["pos_embed"], old_grid=(layout.grid,) * 2, new_grid=(grid,) * 2, num_prefix_tokens=prefix
    )
    return {**state_dict, "pos_embed": pe}


def load_checked(model: nn.Module, state_dict: dict[str, torch.Tensor], *, source: str = "state dict") -> None:
    """``load_state_dict`` that raises one ``ValueError`` naming every missing, unexpected and mis-shaped key."""
    target = model.state_dict()
    missing = sorted(set(target) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(target))
    misshaped = sorted(
        f"{k}: {tuple(state_dict[k].shape)} vs model {tuple(target[k].shape)}"
        for k in set(state_dict) & set(target)
        if state_dict[k].shape != target[k].shape
    )
    if missing or unexpected or misshaped:
        raise ValueError(
            f"cannot load {source}: missing keys {missing}; unexpected keys {unexpected}; mis-shaped keys {misshaped}"
        )
    model.load_state_dict(state_dict, strict=True)


def load_pretrained(model: nn.Module, source: str | os.PathLike, *, tubelet_init: str = "central") -> nn.Module:
    """Load ``source`` (a weight file, or the name of one in ``weights/``) into ``model`` in place.

    An image checkpoint loaded into a video model goes through :func:`vit_to_video` (the tubelet
    inflation / resampling chain); an image checkpoint into a ViT gets its positional table resampled
    if needed. A head with another class count is re-initialised. Anything else that does not fit raises.
    """
    path = resolve_weights(source)
    state = read_state_dict(path)
    info = describe(path) if path.suffix == ".safetensors" else {}
    origin = (
        f"vitzoo checkpoint of {info['arch'] or 'an unnamed model'}" if info else "checkpoint without vitzoo metadata"
    )
    log.info("loading %s (%s)", path, origin)
    state = drop_mismatched_head(state, model)
    video_model = hasattr(model, "encoder")
    if video_model and is_image_checkpoint(state):
        log.info("%s: patch_embed.proj.weight is a 2-D kernel: initialising the video model from an image ViT", path)
        state, report = vit_to_video(state, model, tubelet_init=tubelet_init)
        report.log()
    elif not video_model:
        if not is_image_checkpoint(state):
            raise ValueError(f"{path} is not an image ViT checkpoint (no 2-D patch_embed.proj.weight)")
        state = adapt_vit_pos_embed(state, model)
    if "head.weight" not in state and "head.weight" in model.state_dict():
        state = {**state, **{k: v for k, v in model.state_dict().items() if k.startswith("head.")}}
    load_checked(model, state, source=str(path))
    return model
