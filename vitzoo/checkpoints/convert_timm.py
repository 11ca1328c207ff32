"""timm ``VisionTransformer`` -> vitzoo ViT.

vitzoo's ViT uses timm's parameter names, so conversion is: translate the constructor arguments into
a :class:`~vitzoo.config.ViTConfig` (read from the module, or inferred from tensor shapes for a bare
state dict, with every inference logged), build, and load the tensors unchanged. timm features vitzoo
does not implement raise ``NotImplementedError`` naming the feature instead of converting approximately.

Converted: plain ViTs (DeiT, AugReg, MAE, ...), CLIP image towers (``pre_norm``, no patch bias; timm's
``*_clip_*`` models use GELU, its ``*_clip_quickgelu_*`` variants QuickGELU), DINOv2 (LayerScale) and DINOv2 with
register tokens (``reg_tokens``), DeiT distilled (``VisionTransformerDistilled``: ``dist_token`` and ``head_dist``)
and SigLIP (no class token, attention pooling ``global_pool="map"``).

A timm Hub repository (``config.json`` naming the architecture + ``model.safetensors``) converts without loading
any weights into timm: the architecture's hyper-parameters live in timm's code, so timm builds it on the
``meta`` device (no memory) and the config is read off that skeleton; the tensors are then loaded into vitzoo.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

import torch
from torch import nn

from vitzoo.checkpoints.checked import load_checked
from vitzoo.checkpoints.checkpoint import Checkpoint, layout_config
from vitzoo.checkpoints.hub import CheckpointFiles, checkpoint_files
from vitzoo.checkpoints.inflate import infer_vit_layout
from vitzoo.config import ViTConfig, replace
from vitzoo.errors import CheckpointFileError, UnsupportedFeatureError
from vitzoo.models.vit import VisionTransformer

log = logging.getLogger(__name__)


TIMM_ACTIVATIONS = {  # timm's own activation modules (``act_layer="gelu_tanh"``, ...) -> vitzoo's ``act``
    "timm.layers.activations.GELU": "gelu",
    "timm.layers.activations.GELUTanh": "gelu_tanh",
    "timm.layers.activations.QuickGELU": "quick_gelu",
}


def _activation_name(act: nn.Module) -> str:
    if type(act) is nn.GELU:
        return "gelu_tanh" if act.approximate == "tanh" else "gelu"
    if _timm_class(act) in TIMM_ACTIVATIONS:
        return TIMM_ACTIVATIONS[_timm_class(act)]
    raise UnsupportedFeatureError(
        f"timm ViT uses act_layer={type(act).__name__}, which vitzoo does not implement (GELU, tanh GELU, QuickGELU)"
    )


def _timm_class(module: nn.Module | None) -> str:
    """``module.qualname`` of a module's class (``""`` for None), to tell timm's own layers from look-alikes."""
    return "" if module is None else f"{type(module).__module__}.{type(module).__qualname__}"


# timm's classes vitzoo's ViT reproduces exactly; any other class behind these arguments changes the computation
TIMM_LAYERS = {
    "embed_layer": "timm.layers.patch_embed.PatchEmbed",
    "block_fn": "timm.models.vision_transformer.Block",
    "attn_layer": "timm.layers.attention.Attention",
    "mlp_layer": "timm.layers.mlp.Mlp",
}
LAYER_NORMS = ("torch.nn.modules.normalization.LayerNorm", "timm.layers.norm.LayerNorm")


def _size(hw: tuple[int, int]) -> int | tuple[int, int]:
    """An int for square sizes (as vitzoo's registered configs write them), else ``(H, W)``."""
    return hw[0] if hw[0] == hw[1] else (int(hw[0]), int(hw[1]))


TIMM_VIT_CLASSES = ("VisionTransformer", "VisionTransformerDistilled")


def _standard_attention_pool(pool: nn.Module | None) -> bool:
    """Whether timm's attention pool is the one ``global_pool="map"`` builds (one latent query, token output)."""
    return (
        type(pool).__name__ == "AttentionPoolLatent"
        and pool.latent_len == 1
        and pool.pool == "token"
        and pool.pos_embed is None
        and isinstance(pool.q_norm, nn.Identity)
        and pool.mlp is not None
    )


def unsupported_timm_arguments(model: nn.Module) -> list[str]:
    """The ``VisionTransformer.__init__`` arguments of a timm ViT (module, or its ``meta`` skeleton) that vitzoo does
    not reproduce exactly, each named with its value and what it does (empty: the model converts exactly).

    Arguments that act only in training (drop rates other than ``patch_drop_rate``), at initialisation
    (``weight_init``, ``fix_init``, ``init_values``' value) or on placement (``device``, ``dtype``) convert.
    """
    block, pe = model.blocks[0], model.patch_embed
    attn_pool = getattr(model, "attn_pool", None)
    layers = {"embed_layer": lambda: pe, "block_fn": lambda: block}
    if _timm_class(block) == TIMM_LAYERS["block_fn"]:  # another block may have no .attn / .mlp
        layers.update(attn_layer=lambda: block.attn, mlp_layer=lambda: block.mlp)
    found = [
        f"{arg}={type(layer()).__name__} (vitzoo implements timm's {TIMM_LAYERS[arg].rsplit('.', 1)[1]})"
        for arg, layer in layers.items()
        if _timm_class(layer()) != TIMM_LAYERS[arg]
    ]
    if found:  # the checks below read attributes of timm's own layers
        return found
    norms = [block.norm1, block.norm2, model.norm, model.fc_norm, model.norm_pre, block.attn.q_norm]
    if attn_pool is not None:
        norms.append(getattr(attn_pool, "norm", None))
    odd_norm = next((n for n in norms if not isinstance(n, nn.Identity) and _timm_class(n) not in LAYER_NORMS), None)
    checks = {
        f"global_pool={model.global_pool!r} (vitzoo pools with 'token', 'avg', 'map')": model.global_pool
        not in ("token", "avg", "map"),
        "global_pool='map' with a non-standard attention pool": attn_pool is not None
        and not _standard_attention_pool(attn_pool),
        "pos_embed='none'": model.pos_embed is None,
        f"patch_drop_rate={getattr(model.patch_drop, 'prob', '?')} (patch dropout)": not isinstance(
            model.patch_drop, nn.Identity
        ),
        f"patch_size={tuple(pe.patch_size)} (non-square patches)": len(set(pe.patch_size)) > 1,
        "embed_norm_layer (a norm inside the patch embedding)": not isinstance(getattr(pe, "norm", None), nn.Identity),
        "dynamic_img_pad=True (inputs padded to a multiple of the patch)": bool(getattr(pe, "dynamic_img_pad", False)),
        f"norm_layer={type(odd_norm).__name__} (vitzoo uses LayerNorm)": odd_norm is not None,
        "scale_attn_norm=True (a norm in attention)": not isinstance(getattr(block.attn, "norm", None), nn.Identity),
        "scale_mlp_norm=True (a norm inside the MLP)": not isinstance(getattr(block.mlp, "norm", None), nn.Identity),
        "proj_bias=False (projections without bias)": block.attn.proj.bias is None or block.mlp.fc2.bias is None,
        "final_norm=False": isinstance(model.norm, nn.Identity) and isinstance(model.fc_norm, nn.Identity),
    }
    return [name for name, present in checks.items() if present]


def config_from_timm_module(model: nn.Module, state_dict: dict[str, torch.Tensor] | None = None) -> ViTConfig:
    """Read a :class:`ViTConfig` off a timm ``VisionTransformer`` (or ``VisionTransformerDistilled``) instance.

    The module may live on the ``meta`` device; pass the checkpoint's ``state_dict`` then (LayerScale's
    ``init_values`` is read off its ``gamma``).
    """
    if type(model).__name__ not in TIMM_VIT_CLASSES:
        raise TypeError(f"expected a timm {' or '.join(TIMM_VIT_CLASSES)}, got {type(model).__name__}")
    found = unsupported_timm_arguments(model)
    if found:
        raise UnsupportedFeatureError(f"timm ViT uses arguments vitzoo does not implement: {'; '.join(found)}")
    block = model.blocks[0]
    dim = model.embed_dim
    gamma = (state_dict or {}).get("blocks.0.ls1.gamma", getattr(block.ls1, "gamma", None))
    return ViTConfig(
        img_size=_size(model.patch_embed.img_size),
        patch_size=model.patch_embed.patch_size[0],
        in_chans=model.patch_embed.proj.in_channels,
        num_classes=model.num_classes,
        embed_dim=dim,
        depth=len(model.blocks),
        num_heads=block.attn.num_heads,
        mlp_ratio=block.mlp.fc1.out_features / dim,
        qkv_bias=block.attn.qkv.bias is not None,
        qk_norm=not isinstance(block.attn.q_norm, nn.Identity),
        init_values=float(gamma.detach().abs().mean()) if hasattr(block.ls1, "gamma") else None,
        act=_activation_name(block.mlp.act),
        norm_eps=block.norm1.eps,
        class_token=model.cls_token is not None,
        global_pool=model.global_pool,
        pool_include_prefix=bool(getattr(model, "pool_include_prefix", False)),
        fc_norm=not isinstance(model.fc_norm, nn.Identity),
        no_embed_class=model.no_embed_class,
        pre_norm=not isinstance(model.norm_pre, nn.Identity),
        reg_tokens=getattr(model, "num_reg_tokens", 0),
        dist_token=getattr(model, "dist_token", None) is not None,
        dynamic_size=model.dynamic_img_size,
    )


def config_from_timm_state_dict(state_dict: dict[str, torch.Tensor], *, num_heads: int) -> ViTConfig:
    """Infer a :class:`ViTConfig` from tensor shapes; ``num_heads`` cannot be inferred and must be given."""
    layout = infer_vit_layout(state_dict)
    weight = state_dict["patch_embed.proj.weight"]  # (D, C, p, p)
    dim, chans, patch = weight.shape[0], weight.shape[1], weight.shape[-1]
    depth = 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("blocks."))
    has_fc_norm = "fc_norm.weight" in state_dict
    class_token = layout.class_token
    if "attn_pool.latent" in state_dict or "dist_token" in state_dict:
        raise UnsupportedFeatureError(
            "a bare timm state dict with attention pooling or a distillation token: convert the timm module, or "
            "its Hub folder (config.json + model.safetensors), which say the activation and eps too"
        )
    cfg = ViTConfig(
        img_size=_size((layout.grid[0] * patch, layout.grid[1] * patch)),
        patch_size=patch,
        in_chans=chans,
        num_classes=state_dict["head.weight"].shape[0] if "head.weight" in state_dict else 0,
        embed_dim=dim,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=state_dict["blocks.0.mlp.fc1.weight"].shape[0] / dim,
        qkv_bias="blocks.0.attn.qkv.bias" in state_dict,
        qk_norm="blocks.0.attn.q_norm.weight" in state_dict,
        init_values=1.0 if "blocks.0.ls1.gamma" in state_dict else None,
        class_token=class_token,
        global_pool="avg" if has_fc_norm or not class_token else "token",
        fc_norm=has_fc_norm,
        no_embed_class=layout.num_prefix_tokens > 0 and not layout.pos_embed_has_prefix,
        pre_norm="norm_pre.weight" in state_dict,
        reg_tokens=state_dict["reg_token"].shape[1] if "reg_token" in state_dict else 0,
    )
    log.info(
        "inferred from the state dict: %s px / patch %d, dim %d, depth %d, %s, pool %s, qk_norm %s, "
        "LayerScale %s (activation assumed exact GELU, LayerNorm eps assumed 1e-6)",
        "x".join(map(str, cfg.img_hw)), patch, dim, depth, "class token" if class_token else "no class token",
        cfg.global_pool, cfg.qk_norm, cfg.init_values is not None,
    )  # fmt: skip
    return cfg


def timm_hub_config(config: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``(architecture, model_args, pretrained_cfg)`` of a timm ``config.json`` (current and legacy layouts)."""
    pretrained_cfg = config.get("pretrained_cfg", config)  # legacy files keep everything at the top level
    model_args = dict(config.get("model_args") or {})
    num_classes = config.get("num_classes", pretrained_cfg.get("num_classes"))
    if num_classes is not None:
        model_args.setdefault("num_classes", num_classes)
    return config["architecture"], model_args, pretrained_cfg


def _check_claims(model_args: dict[str, Any], state: dict[str, torch.Tensor], source: str) -> None:
    """``embed_dim`` / ``depth`` of a ``config.json``'s ``model_args`` against the weights (one ``ValueError`` line):
    a lying claim (a 65536-wide or 10000-deep model) is refused before anything is built for it."""
    kernel = state.get("patch_embed.proj.weight")
    blocks = {int(k.split(".")[1]) for k in state if k.startswith("blocks.") and k.split(".")[1].isdigit()}
    has = {"embed_dim": kernel.shape[0] if kernel is not None else None, "depth": max(blocks) + 1 if blocks else None}
    differ = [k for k, v in has.items() if k in model_args and v is not None and model_args[k] != v]
    if differ:
        claims = ", ".join(f"{k}={model_args[k]!r} but the weights have {has[k]}" for k in differ)
        raise CheckpointFileError(
            f"{source}: config.json's model_args claim {claims}; it does not describe these weights"
        )


def timm_checkpoint(files: CheckpointFiles, config: dict[str, Any]) -> Checkpoint:
    """The vitzoo checkpoint of a timm folder (``config.json`` + ``model.safetensors``), weights never in timm.

    timm builds the named architecture on the ``meta`` device (its hyper-parameters live in its code); the
    config is read off that skeleton and the folder's tensors, which already have vitzoo's (timm's) names.
    ``mean``/``std`` come from the ``pretrained_cfg``.
    """
    import timm

    architecture, model_args, pretrained_cfg = timm_hub_config(config)
    if not isinstance(architecture, str) or not timm.is_model(architecture.split(".")[0]):
        raise CheckpointFileError(
            f"{files.description}: config.json names timm architecture {architecture!r}, which timm "
            f"{timm.__version__} does not have; check the name (timm.list_models) or upgrade timm"
        )
    state = None
    if {"embed_dim", "depth"} & model_args.keys():  # before timm builds a skeleton of the claimed size
        state = files.state_dict()
        _check_claims(model_args, state, files.description)
    with torch.device("meta"):  # no memory; weight_init="skip": initialising a meta skeleton only costs time
        try:
            skeleton = timm.create_model(architecture, pretrained=False, **{"weight_init": "skip", **model_args})
        except TypeError:  # not a VisionTransformer (its constructor has no weight_init): refused below by class
            skeleton = timm.create_model(architecture, pretrained=False, **model_args)
    if type(skeleton).__name__ not in TIMM_VIT_CLASSES:
        raise UnsupportedFeatureError(
            f"{files.description}: timm architecture {architecture!r} is a {type(skeleton).__name__}; vitzoo "
            f"converts timm's {' and '.join(TIMM_VIT_CLASSES)}"
        )
    state = files.state_dict() if state is None else state
    cfg = config_from_timm_module(skeleton, state)
    mean, std = pretrained_cfg.get("mean"), pretrained_cfg.get("std")
    if mean is not None and std is not None and len(mean) == len(std) == 3:
        cfg = replace(cfg, mean=tuple(map(float, mean)), std=tuple(map(float, std)))
    log.info(
        "timm %s (%s): %s px / patch %d, dim %d, depth %d, %d heads, %s, norm eps %g, prefix tokens %d, pool %s, "
        "mean %s, std %s",
        architecture, pretrained_cfg.get("tag") or "no tag", "x".join(map(str, cfg.img_hw)), cfg.patch_size,
        cfg.embed_dim, cfg.depth, cfg.num_heads, cfg.act, cfg.norm_eps, cfg.num_prefix_tokens, cfg.global_pool,
        cfg.mean, cfg.std,
    )  # fmt: skip
    return Checkpoint(state=dict(state), config=cfg, source=f"timm {files.description}", tags=timm_tags(pretrained_cfg))


def timm_tags(pretrained_cfg: dict[str, Any]) -> dict[str, str]:
    """The provenance facts of timm's ``pretrained_cfg`` that vitzoo keeps (``license``, ``hf_hub_id``)."""
    return {k: str(pretrained_cfg[k]) for k in ("license", "hf_hub_id") if pretrained_cfg.get(k)}


def from_timm(
    source: nn.Module | dict[str, torch.Tensor] | str | os.PathLike, *, num_heads: int | None = None, **overrides
) -> VisionTransformer:
    """Convert a timm ViT (module, state dict, timm folder or ``hf-hub:timm/<name>``) to a vitzoo ViT with identical
    outputs.

    For a state dict pass ``num_heads``; ``overrides`` adjust the inferred config (e.g. ``act``).
    """
    if isinstance(source, (str, os.PathLike)):
        files = checkpoint_files(source)
        ckpt = timm_checkpoint(files, layout_config(files, "timm"))
        cfg = replace(ckpt.config, **overrides) if overrides else ckpt.config
        return dataclasses.replace(ckpt, config=cfg).build()
    if isinstance(source, nn.Module):
        cfg = config_from_timm_module(source)
        state = source.state_dict()
    else:
        if num_heads is None:
            raise CheckpointFileError("num_heads cannot be inferred from a state dict; pass num_heads=")
        cfg = config_from_timm_state_dict(source, num_heads=num_heads)
        state = source
    cfg = replace(cfg, **overrides) if overrides else cfg
    model = VisionTransformer(cfg)
    load_checked(model, dict(state), source="timm ViT")
    model.pretrained_tags.update(timm_tags(getattr(source, "pretrained_cfg", None) or {}))
    return model
