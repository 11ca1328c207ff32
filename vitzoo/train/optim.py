"""AdamW with weight-decay exclusions and layer-wise lr decay, and the warmup + cosine schedule (timm parts).

Layer ids for layer-wise lr decay (BEiT / timm convention, read from parameter names only):

* id 0: the input embeddings, ``patch_embed.*`` and every ``pos_embed`` / ``cls_token`` / ``time_embed`` of the
  first block stack (``pos_embed``, ``encoder.transformer.pos_embed``, ``encoder.time_embed``, ...);
* ``<prefix>blocks.{i}.*`` -> ``offset + i + 1``, where a model's block stacks (distinct ``<prefix>``
  values, in registration order) are numbered one after the other: the factorised encoder's
  ``encoder.spatial.blocks.i`` get ``1..S`` and its ``encoder.temporal.blocks.j`` get ``S + 1..S + T``;
* the ``cls_token`` / ``pos_embed`` of a later stack (the factorised encoder's temporal transformer) get the id
  just below its first block, ``S``, not 0: they feed that stack, and at id 0 a freshly initialised temporal
  table would learn at the smallest rate of the model;
* a stage's parameters outside its blocks (a stack whose prefix ends in a stage index, ``layers.{s}.``: Swin's
  patch merging at the start of stage ``s``) get the id just below the stage's first block, by the same reasoning;
* everything else (final norms, ``head``) -> the last id, ``num_blocks + 1``.

This covers ViT (``blocks.i``), joint (``encoder.transformer.blocks.i``), factorised encoder / VTN
(``encoder.spatial.blocks.i``, ``encoder.temporal.blocks.i``), factorised self-attention / dot-product and
TimeSformer (``encoder.blocks.i``), MViT (``stages.s.blocks.i``) and Swin (``layers.s.blocks.i``). Parameter
group ``i`` gets ``lr_scale = layer_decay ** (last - i)``; timm's schedulers multiply the scheduled lr by it.

Weight decay is off for 1-D parameters (norm weights, biases, LayerScale) and for the names the model lists in
``model.no_weight_decay()`` (timm's convention: parameter names relative to the model) when it has that method;
a model without it falls back to excluding names containing ``pos_embed``, ``cls_token`` or ``time_embed``.

Given a :class:`~vitzoo.train.task.Task`, the rules above apply to ``task.model`` (its parameters are named
``model.*`` in the groups); the task's own trainable modules (projection heads, predictors) learn at the full
rate (the last layer id) with weight decay on their matrices only. Parameters that do not require grad (a
momentum target network) are left out.
"""

from __future__ import annotations

import logging
import math
import re

import torch
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler
from torch import nn

from vitzoo.train.config import TrainConfig
from vitzoo.train.task import Task

log = logging.getLogger(__name__)

NO_DECAY_NAMES = ("pos_embed", "cls_token", "time_embed")
EMBED_NAMES = ("pos_embed", "cls_token", "time_embed")
_BLOCK = re.compile(r"^(?P<prefix>(?:.*\.)?)blocks\.(?P<index>\d+)\.")
_STAGE = re.compile(r"\.\d+\.$")  # a block stack that is one stage of a hierarchical model: layers.2.


def block_stacks(names: list[str]) -> dict[str, int]:
    """Prefix of every ``blocks.{i}`` stack -> its depth, in order of first appearance."""
    depths: dict[str, int] = {}
    for name in names:
        match = _BLOCK.match(name)
        if match:
            prefix, index = match["prefix"], int(match["index"])
            depths[prefix] = max(depths.get(prefix, 0), index + 1)
    return depths


def layer_ids(model: nn.Module) -> dict[str, int]:
    """Parameter name -> layer id for layer-wise lr decay (see the module docstring); ids run 0..num_blocks + 1."""
    names = [name for name, _ in model.named_parameters()]
    stacks = block_stacks(names)
    offsets, total = {}, 0
    for prefix, depth in stacks.items():
        offsets[prefix] = total
        total += depth
    last = total + 1
    ids = {}
    for name in names:
        match = _BLOCK.match(name)
        if match:
            ids[name] = offsets[match["prefix"]] + int(match["index"]) + 1
        elif name.startswith("patch_embed."):
            ids[name] = 0
        elif any(key in name.rsplit(".", 1)[-1] for key in EMBED_NAMES):
            owner = name.rsplit(".", 1)[0] + "." if "." in name else ""
            candidates = [p for p in stacks if owner.startswith(p)]  # the stack whose module holds the table
            ids[name] = offsets[max(candidates, key=len)] if candidates else 0
        else:
            stage = [p for p in stacks if _STAGE.search(p) and name.startswith(p)]
            ids[name] = offsets[stage[0]] if stage else last
    return ids


def use_weight_decay(name: str, param: torch.Tensor, no_decay: frozenset[str] | None = None) -> bool:
    """False for 1-D parameters and for ``name`` in ``no_decay`` (the model's ``no_weight_decay()``), or, when
    ``no_decay`` is None, for names containing ``pos_embed`` / ``cls_token`` / ``time_embed``."""
    if param.ndim <= 1:
        return False
    if no_decay is not None:
        return name not in no_decay
    return not any(key in name for key in NO_DECAY_NAMES)


def no_weight_decay_names(model: nn.Module) -> frozenset[str] | None:
    """``model.no_weight_decay()`` as a set of parameter names, or None when the model has no such method."""
    method = getattr(model, "no_weight_decay", None)
    if method is None:
        return None
    names = frozenset(method())
    unknown = names - {n for n, _ in model.named_parameters()}
    if unknown:
        raise ValueError(f"{type(model).__name__}.no_weight_decay() names no parameter of the model: {sorted(unknown)}")
    return names


def param_groups(module: nn.Module, *, weight_decay: float, layer_decay: float | None = None) -> list[dict]:
    """Parameter groups keyed by (layer id, decay or not), each with ``weight_decay`` and ``lr_scale``.

    ``module`` is a model or a :class:`~vitzoo.train.task.Task` (layer ids and weight-decay exclusions then come
    from ``task.model``, and the task's other parameters go to the last layer id; see the module docstring).
    Without ``layer_decay`` every ``lr_scale`` is 1 and there are at most two groups. Frozen parameters
    (``requires_grad=False``) are left out.
    """
    model, prefix = (module.model, "model.") if isinstance(module, Task) else (module, "")
    ids = {prefix + name: i for name, i in layer_ids(model).items()} if layer_decay is not None else {}
    no_decay = no_weight_decay_names(model)
    model_names = {prefix + name for name, _ in model.named_parameters()}
    last = max(ids.values(), default=0)
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        layer = ids.get(name, last)
        if name in model_names:
            decay = use_weight_decay(name[len(prefix) :], param, no_decay)
        else:  # a module of the task outside the model (a projection head): decay its matrices only
            decay = param.ndim > 1
        key = (layer, decay)
        if key not in groups:
            scale = 1.0 if layer_decay is None else layer_decay ** (last - layer)
            groups[key] = {
                "params": [],
                "param_names": [],
                "weight_decay": weight_decay if decay else 0.0,
                "lr_scale": scale,
                "layer_id": layer,
            }
        groups[key]["params"].append(param)
        groups[key]["param_names"].append(name)
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return [groups[k] for k in sorted(groups)]


def build_optimizer(module: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW (timm's factory) over :func:`param_groups` of a model or a task; ``cfg.lr`` is the peak rate of the
    last layer."""
    groups = param_groups(module, weight_decay=cfg.weight_decay, layer_decay=cfg.layer_decay)
    log.debug("optimizer groups: %s", [(g["layer_id"], g["weight_decay"], g["lr_scale"]) for g in groups])
    for group in groups:  # names are for inspection only; the optimizer state must hold tensors and numbers
        del group["param_names"]
    return create_optimizer_v2(
        groups, opt="adamw", lr=cfg.lr, weight_decay=cfg.weight_decay, betas=tuple(cfg.betas), eps=cfg.eps
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, *, updates_per_epoch: int
) -> tuple[CosineLRScheduler, int]:
    """Per-update linear warmup then cosine decay to ``min_lr`` (timm ``CosineLRScheduler``).

    Returns the scheduler and the total number of updates, ``epochs * updates_per_epoch``. Call
    ``scheduler.step_update(step)`` after every optimizer update (``step`` counted from 1).
    """
    total = cfg.epochs * updates_per_epoch
    warmup = min(math.ceil(cfg.warmup_epochs * updates_per_epoch), total - 1)
    scheduler = CosineLRScheduler(
        optimizer,
        t_initial=max(total - warmup, 1),
        lr_min=cfg.min_lr,
        warmup_t=warmup,
        warmup_lr_init=cfg.warmup_lr,
        warmup_prefix=True,
        t_in_epochs=False,
    )
    return scheduler, total
