"""Loading weights into a built model, with every mismatch reported by name."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Collection
from typing import Any

import torch
from torch import nn

from vitzoo.checkpoints.adapters import adapter_for
from vitzoo.checkpoints.adopt import check_facts
from vitzoo.checkpoints.checked import check_file_shapes, check_state_shapes, load_checked
from vitzoo.checkpoints.checkpoint import Checkpoint, strip_wrapper_prefix
from vitzoo.checkpoints.fit import explain_mismatch
from vitzoo.checkpoints.inflate import infer_vit_layout
from vitzoo.checkpoints.source import read_checkpoint
from vitzoo.checkpoints.vit_to_video import vit_to_video
from vitzoo.errors import CheckpointFileError
from vitzoo.layers.pos_embed import resample_pos_embed
from vitzoo.models import VisionTransformer, build_model

log = logging.getLogger(__name__)

HEADS = ("head", "head_dist")  # classifier modules re-initialised when the class count differs
__all__ = ["Checkpoint", "check_file_shapes", "load_checked", "load_pretrained", "strip_wrapper_prefix"]


def is_image_checkpoint(state_dict: dict[str, torch.Tensor]) -> bool:
    """True when ``patch_embed.proj.weight`` is a 2-D convolution kernel ``(D, C, p, p)``."""
    weight = state_dict.get("patch_embed.proj.weight")
    return weight is not None and weight.ndim == 4


def drop_mismatched_head(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Remove ``head.*`` (and DeiT's ``head_dist.*``) from ``state_dict`` when its class count differs from the
    model's, saying so."""
    target = model.state_dict()
    for head in HEADS:
        src, dst = state_dict.get(f"{head}.weight"), target.get(f"{head}.weight")
        if head != "head" and dst is None:
            continue  # a model without a distillation head: the ViT -> video chain drops it, saying so
        if src is not None and (dst is None or src.shape != dst.shape):
            log.info(
                "%s re-initialised: checkpoint has %d classes, model has %d",
                head, src.shape[0], dst.shape[0] if dst is not None else 0,
            )  # fmt: skip
            state_dict = {k: v for k, v in state_dict.items() if not k.startswith(f"{head}.")}
    return state_dict


def adapt_vit_pos_embed(
    state_dict: dict[str, torch.Tensor], model: nn.Module, source_grid: tuple[int, int] | None = None
) -> dict[str, torch.Tensor]:
    """Resample an image checkpoint's positional table to the model's grid when they differ."""
    target = model.state_dict()["pos_embed"]
    if state_dict["pos_embed"].shape == target.shape:
        return state_dict
    layout = infer_vit_layout(state_dict, source_grid)
    prefix = layout.num_prefix_tokens if layout.pos_embed_has_prefix else 0
    grid = model.cfg.grid_hw
    log.info("pos_embed resampled from a %dx%d to a %dx%d grid", *layout.grid, *grid)
    pe = resample_pos_embed(state_dict["pos_embed"], old_grid=layout.grid, new_grid=grid, num_prefix_tokens=prefix)
    return {**state_dict, "pos_embed": pe}


def _resized(state: dict[str, torch.Tensor], source_cfg: Any, model: nn.Module, source: str) -> dict[str, torch.Tensor]:
    """A same-family checkpoint built for another input size, resampled to the model's (``model.resample``)."""
    video = model.modality == "video"
    sizes, source_sizes = (
        {"img_size": cfg.img_hw, **({"num_frames": cfg.num_frames} if video else {})} for cfg in (model.cfg, source_cfg)
    )
    if sizes == source_sizes:
        return state
    head = state.get("head.weight")
    tmp_cfg = dataclasses.replace(source_cfg, num_classes=head.shape[0] if head is not None else 0)
    check_state_shapes(state, tmp_cfg, source=source)  # on "meta", before building the size the config claims
    tmp = build_model(tmp_cfg)
    load_checked(tmp, state, source=source, source_cfg=source_cfg)
    tmp.resample(**sizes)
    log.info("%s resampled from %s to %s", source, source_sizes, sizes)
    return tmp.state_dict()


def load_pretrained(
    model: nn.Module,
    source: Checkpoint | str | os.PathLike,
    *,
    tubelet_init: str = "central",
    overridden: Collection[str] = (),
) -> nn.Module:
    """Load ``source`` into ``model`` in place: a weight file, the name of one in ``weights/``, a checkpoint folder,
    ``hf-hub:<org>/<name>[@<revision>]`` (see :mod:`vitzoo.checkpoints.source`) or a :class:`Checkpoint`.

    An image checkpoint loaded into a video model goes through :func:`vit_to_video` (the tubelet
    inflation / resampling chain); an image checkpoint into a ViT gets its positional table resampled
    if needed; a checkpoint of the same family built for another input size is resampled to the
    model's. A head with another class count is re-initialised. When the checkpoint says its config, the
    model must share its trunk facts (activation, norm eps, ...; see :mod:`~vitzoo.checkpoints.adopt`), except
    those named in ``overridden`` (set on purpose by the caller). Anything else that does not fit raises one line
    saying why (see :func:`load_checked`).
    """
    ckpt = read_checkpoint(source)
    name, state, source_cfg = ckpt.source, ckpt.state, ckpt.config
    adapt = adapter_for(model.cfg)  # a family's own layouts (e.g. an image Swin into a video Swin)
    if adapt is not None:
        state, source_cfg = adapt(state, source_cfg, model.cfg, source=name, tubelet_init=tubelet_init)
    check_facts(model.cfg, source_cfg, allowed=overridden, source=name)
    state = drop_mismatched_head(state, model)
    source_grid = getattr(source_cfg, "grid_hw", None)
    video_model = model.modality == "video"
    if video_model and is_image_checkpoint(state):
        log.info("%s: patch_embed.proj.weight is a 2-D kernel: initialising the video model from an image ViT", name)
        state, report = vit_to_video(
            state, model, tubelet_init=tubelet_init, source_grid=source_grid, source_cfg=source_cfg, source=name
        )
        report.log()
    elif isinstance(model, VisionTransformer):
        if not is_image_checkpoint(state):
            raise CheckpointFileError(f"{name} is not an image ViT checkpoint (no 2-D patch_embed.proj.weight)")
        state = adapt_vit_pos_embed(state, model, source_grid)
    elif source_cfg is not None and type(source_cfg) is type(model.cfg):
        why = explain_mismatch(state, model.cfg, source_cfg=source_cfg)
        if why is not None:
            raise CheckpointFileError(f"cannot load {name}: {why}")
        state = _resized(state, source_cfg, model, name)
    target = model.state_dict()
    for head in HEADS:
        if f"{head}.weight" not in state and f"{head}.weight" in target:
            log.info(
                "%s has no classifier %s (a backbone, e.g. self-supervised): the model's %d-class %s starts fresh",
                name, head, target[f"{head}.weight"].shape[0], head,
            )  # fmt: skip
            state = {**state, **{k: v for k, v in target.items() if k.startswith(f"{head}.")}}
    load_checked(model, state, source=name, source_cfg=source_cfg if type(source_cfg) is type(model.cfg) else None)
    return model
