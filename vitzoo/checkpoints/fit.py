"""Why a checkpoint does not fit a model, in one line: the architecture facts that differ and what would fit.

The facts come from the checkpoint's own config when it has one (a vitzoo file: every field is known, heads
included), else from its tensors (width and input channels from the patch kernel, patch and tubelet size from
its spatial and temporal extent, depth from the numbered blocks, MLP ratio from the first MLP). They are compared
with the model's config, and the registered models whose config has the checkpoint's facts are suggested.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import torch

from vitzoo.registry import ENCODERS, MODELS

# Config fields that never make weights incompatible: sizes are resampled, the head is re-initialised, the rest
# are training-time or preprocessing options.
COMPATIBLE_FIELDS = frozenset(
    {
        "num_classes",
        "img_size",
        "num_frames",
        "dynamic_size",
        "mean",
        "std",
        "drop_rate",
        "drop_path_rate",
        "attn_drop_rate",
        "proj_drop_rate",
        "pos_drop_rate",
        "temporal_init",
        "token_merging",
        "token_merging_prop_attn",
    }
)
_BLOCK = re.compile(r"^(.*?blocks)\.(\d+)\.")


def weight_facts(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Architecture facts read off tensors (anything with ``.shape`` works, e.g. ``meta`` tensors).

    ``embed_dim`` and ``in_chans`` from the patch kernel, ``patch_size`` and ``tubelet_size`` (3-D kernels)
    from its extent; for a top-level ``blocks`` stack (an image ViT) ``depth`` and ``mlp_ratio``; and
    ``block_stacks``: the number of blocks in every ``...blocks`` stack (``{"encoder.spatial.blocks": 4}``).
    """
    facts: dict[str, Any] = {}
    kernel = state.get("patch_embed.proj.weight")
    if kernel is not None and len(kernel.shape) in (4, 5):
        facts.update(embed_dim=kernel.shape[0], in_chans=kernel.shape[1], patch_size=kernel.shape[-1])
        if len(kernel.shape) == 5:
            facts["tubelet_size"] = kernel.shape[2]
    stacks: dict[str, int] = {}
    for key in state:
        if m := _BLOCK.match(key):
            stacks[m[1]] = max(stacks.get(m[1], 0), int(m[2]) + 1)
    if "blocks" in stacks:
        facts["depth"] = stacks["blocks"]
        fc1 = state.get("blocks.0.mlp.fc1.weight")
        if fc1 is not None and "embed_dim" in facts:
            facts["mlp_ratio"] = fc1.shape[0] / facts["embed_dim"]
    facts["block_stacks"] = stacks
    return facts


def unused_fields(cfg: Any) -> tuple[str, ...]:
    """Config fields the model ``cfg`` describes does not use, as its encoder declares (``unused_fields``)."""
    encoder = getattr(cfg, "encoder", None)
    if encoder is None or encoder not in ENCODERS:
        return ()
    return tuple(getattr(ENCODERS.get(encoder), "unused_fields", ()))


def config_facts(cfg: Any) -> dict[str, Any]:
    """The architecture fields of a config (everything but :data:`COMPATIBLE_FIELDS`)."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name not in COMPATIBLE_FIELDS}


def _fits(cfg: Any, facts: Mapping[str, Any]) -> bool:
    return all(getattr(cfg, k, None) == v for k, v in facts.items())


def matching_models(model_cfg: Any, facts: Mapping[str, Any], *, limit: int = 3) -> list[str]:
    """Registered models of ``model_cfg``'s class (and encoder) whose config has every fact in ``facts``."""
    found = []
    for name in MODELS.names():
        cfg = MODELS.get(name)()
        same_kind = type(cfg) is type(model_cfg) and getattr(cfg, "encoder", None) == getattr(
            model_cfg, "encoder", None
        )
        if same_kind and _fits(cfg, facts):
            found.append(name)
    return found[:limit]


def key_summary(missing: list[str], unexpected: list[str], misshaped: list[str], *, shown: int = 3) -> str:
    """``"2 missing keys (a, b), 1 unexpected key (c)"``: counts with the first few names of each kind."""
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
        if keys:
            more = f", ... {len(keys) - shown} more" if len(keys) > shown else ""
            parts.append(f"{len(keys)} {label} key{'s' if len(keys) > 1 else ''} ({', '.join(keys[:shown])}{more})")
    return "; ".join(parts)


def explain_mismatch(
    state: Mapping[str, torch.Tensor],
    cfg: Any,
    *,
    source_cfg: Any = None,
    compare: tuple[str, ...] | None = None,
) -> str | None:
    """One line naming the architecture facts in which a checkpoint differs from the model config ``cfg``.

    The checkpoint's facts come from ``source_cfg`` when known, else from its tensors ``state``
    (:func:`weight_facts`); ``compare`` limits the facts compared (default: all that ``cfg`` has). A config
    with a ``depth`` that no block stack of the tensors has differs too. Returns None when nothing differs.
    """
    facts = config_facts(source_cfg) if source_cfg is not None else weight_facts(state)
    stacks = facts.pop("block_stacks", {})
    unused = unused_fields(cfg)
    facts = {
        k: v for k, v in facts.items() if hasattr(cfg, k) and k not in unused and (compare is None or k in compare)
    }
    diffs = {k: (v, getattr(cfg, k)) for k, v in facts.items() if getattr(cfg, k) != v}
    if (
        source_cfg is None
        and "depth" not in facts
        and stacks
        and getattr(cfg, "depth", None) not in (None, *stacks.values())
    ):
        diffs["depth"] = ("/".join(f"{name}: {n}" for name, n in stacks.items()), cfg.depth)
    if not diffs:
        return None
    theirs = ", ".join(f"{k}={a}" for k, (a, _) in diffs.items())
    ours = ", ".join(f"{k}={b}" for k, (_, b) in diffs.items())
    matches = matching_models(cfg, {k: v for k, v in facts.items() if k in diffs})
    hint = f"use {' or '.join(matches)}, or override {theirs}" if matches else f"override {theirs}"
    return f"the checkpoint has {theirs} but the model {ours}; {hint}"
