"""Initialise a video model from an image ViT state dict (timm layout, which is also vitzoo's).

The chain of named fix-ups: inflate the patch kernel into a tubelet kernel, resample the positional
table to the new grid (and tile it over time for joint attention), copy the class token, the norm before
the blocks (CLIP), the blocks and the final norm into the encoder's trunk, zero the learned temporal embeddings,
start the new temporal branches as ``cfg.temporal_init`` says, keep the head only if its shape fits. The encoder
class declares where each piece goes (``VideoEncoder.vit_init``); nothing here branches on the variant's name.

What video models do not carry is dropped, each with a log line saying so: register tokens (DINOv2 with
registers) and DeiT's distillation token with its head, because every video encoder has one prefix layout (a
class token or none) and the factorised ones would need them per frame; the trunk's attention adapts to their
absence in fine-tuning. SigLIP's attention-pooling head, because video models pool by class token or mean. A
source without a patch-embedding bias (CLIP) gives the tubelet embedding a zero bias.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from vitzoo.checkpoints.fit import explain_mismatch
from vitzoo.checkpoints.inflate import (
    infer_vit_layout,
    inflate_patch_embed,
    spatial_pos_embed,
    tile_temporal_pos_embed,
)
from vitzoo.errors import CheckpointFileError, UnsupportedFeatureError

log = logging.getLogger(__name__)

# What an image ViT must share with the video encoder's trunk to initialise it.
VIT_FACTS = ("embed_dim", "depth", "num_heads", "patch_size", "in_chans", "mlp_ratio")


@dataclass
class InitReport:
    """Which target keys were inflated, resampled, copied, zeroed or newly initialised, and which source
    keys were dropped."""

    inflated: list[str] = field(default_factory=list)
    resampled: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    zeroed: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def log(self, logger: logging.Logger = log) -> None:
        """One log line per category, naming every key."""
        for name in ("inflated", "resampled", "zeroed", "new", "dropped"):
            keys = getattr(self, name)
            if keys:
                logger.info("ViT -> video init: %d %s: %s", len(keys), name, ", ".join(keys))
        logger.info("ViT -> video init: %d copied unchanged", len(self.copied))


# Source tensors video models do not carry: key prefix -> why (logged when present).
DROPPED_EXTRAS = {
    "reg_token": "register tokens: video encoders carry none (one prefix layout, a class token or none, for every "
    "encoder); fine-tuning adapts the trunk",
    "dist_token": "DeiT's distillation token: video encoders carry none",
    "head_dist": "DeiT's distillation head: video models have one head",
    "attn_pool.": "the attention-pooling head (global_pool='map'): video models pool by class token or mean",
}


def _log_dropped_extras(vit_state: dict[str, torch.Tensor], source: str) -> None:
    for prefix, why in DROPPED_EXTRAS.items():
        keys = [k for k in vit_state if k.startswith(prefix)]
        if keys:
            log.warning("ViT -> video init: %s dropped (%d tensors): %s", prefix.rstrip("."), len(keys), why)


def vit_to_video(
    vit_state: dict[str, torch.Tensor],
    model: nn.Module,
    *,
    tubelet_init: str = "central",
    source_grid: tuple[int, int] | None = None,
    source_cfg: Any = None,
    source: str = "the ViT checkpoint",
) -> tuple[dict[str, torch.Tensor], InitReport]:
    """A complete state dict for ``model`` (a ``VideoTransformer``) initialised from ``vit_state``.

    Keys the ViT cannot provide keep ``model``'s current (fresh) values and are reported as ``new``.
    ``source_grid`` is the ViT's ``(h, w)`` patch grid when known (else its table must be square);
    ``source_cfg`` its config when known. A ViT of another width, depth, head count, patch size or MLP
    width than the encoder's trunk raises one line saying so (and which registered models would fit).
    """
    spec = getattr(getattr(model, "encoder", None), "vit_init", None)
    if spec is None:
        raise CheckpointFileError(
            f"{type(model).__name__} cannot be initialised from an image ViT ({source}): only the video encoders "
            "(ViViT, TimeSformer, VTN, frame averaging) take ViT weights"
        )
    cfg = model.cfg
    target = model.state_dict()
    trunk = f"encoder.{spec.trunk}." if spec.trunk else "encoder."
    why = explain_mismatch(vit_state, cfg, source_cfg=source_cfg, compare=VIT_FACTS)
    if why is not None:
        raise CheckpointFileError(f"cannot initialise {type(model).__name__} ({cfg.encoder}) from {source}: {why}")
    layout = infer_vit_layout(vit_state, source_grid)
    log.info(
        "source ViT: %dx%d patch grid, %s class token, positional table %s it",
        *layout.grid, "with" if layout.num_prefix_tokens else "without",
        "covering" if layout.pos_embed_has_prefix else "not covering",
    )  # fmt: skip
    out: dict[str, torch.Tensor] = {}
    report = InitReport()
    used: set[str] = set()

    def take(src: str, dst: str, value: torch.Tensor | None = None, kind: str = "copied") -> None:
        out[dst] = (vit_state[src] if value is None else value).clone()
        used.add(src)
        getattr(report, kind).append(dst)

    take(
        "patch_embed.proj.weight",
        "patch_embed.proj.weight",
        inflate_patch_embed(vit_state["patch_embed.proj.weight"], tubelet_size=cfg.tubelet_size, mode=tubelet_init),
        "inflated",
    )
    if "patch_embed.proj.bias" in vit_state:
        take("patch_embed.proj.bias", "patch_embed.proj.bias")
    else:  # CLIP's patch embedding has no bias: the tubelet embedding's starts at zero, which is the same
        out["patch_embed.proj.bias"] = torch.zeros_like(target["patch_embed.proj.bias"])
        report.zeroed.append("patch_embed.proj.bias")
    if "norm_pre.weight" in vit_state:
        if f"{trunk}norm_pre.weight" not in target:
            raise UnsupportedFeatureError(
                f"{source} normalises before its blocks (pre_norm, CLIP style) and the {cfg.encoder!r} encoder has no "
                "such norm; initialise an encoder built on a ViT trunk (joint, fact_enc, frame_avg, vtn)"
            )
        for p in ("weight", "bias"):
            take(f"norm_pre.{p}", f"{trunk}norm_pre.{p}")
    _log_dropped_extras(vit_state, source)

    pos_key = f"{trunk}pos_embed"
    h, w = cfg.grid_hw
    has_prefix = target[pos_key].shape[1] % (h * w) == 1
    pe = spatial_pos_embed(vit_state["pos_embed"], layout, new_grid=(h, w), keep_prefix=has_prefix)
    if spec.pos_embed == "tile":
        pe = tile_temporal_pos_embed(pe, num_tubelets=cfg.num_tubelets, num_prefix_tokens=int(has_prefix))
    take("pos_embed", pos_key, pe, "resampled")
    if f"{trunk}cls_token" in target and "cls_token" in vit_state:
        take("cls_token", f"{trunk}cls_token")
    elif f"{trunk}cls_token" in target:
        log.info(
            "%s has no class token: the video model's starts fresh (a model without one, class_token=False and "
            "global_pool='avg', would pool as the source does)", source,
        )  # fmt: skip

    for key in vit_state:
        if key.startswith("blocks.") and f"{trunk}{key}" in target:
            take(key, f"{trunk}{key}")
    final_norm = "norm" if "norm.weight" in vit_state else "fc_norm"
    if final_norm == "fc_norm":
        log.warning(
            "the source ViT normalises after pooling (fc_norm); its fc_norm becomes the encoder's final norm, "
            "which normalises tokens before pooling"
        )
    for p in ("weight", "bias"):
        if f"{final_norm}.{p}" in vit_state:
            take(f"{final_norm}.{p}", f"{trunk}norm.{p}")

    for key in spec.zero:
        out[f"encoder.{key}"] = torch.zeros_like(target[f"encoder.{key}"])
        report.zeroed.append(f"encoder.{key}")
    for i in range(cfg.depth):
        block = f"{trunk}blocks.{i}."
        if cfg.temporal_init == "copy":
            for dst, src in spec.temporal_copy.items():
                for key in [k for k in vit_state if k.startswith(f"blocks.{i}.{src}.")]:
                    take(key, block + dst + key[len(f"blocks.{i}.{src}") :])
        zeroed = spec.block_zero if cfg.temporal_init == "copy" else (*spec.temporal_zero, *spec.block_zero)
        for layer in zeroed:
            for p in ("weight", "bias"):
                out[f"{block}{layer}.{p}"] = torch.zeros_like(target[f"{block}{layer}.{p}"])
                report.zeroed.append(f"{block}{layer}.{p}")

    for p in ("weight", "bias"):
        key = f"head.{p}"
        if key in vit_state and key in target and vit_state[key].shape == target[key].shape:
            take(key, key)

    for key, value in target.items():
        if key not in out:
            out[key] = value
            report.new.append(key)
    report.dropped = sorted(set(vit_state) - used)
    bad = [k for k in out if k not in target or out[k].shape != target[k].shape]
    if bad:
        raise CheckpointFileError(f"ViT -> video mapping produced keys the model does not accept: {bad}")
    return out, report
