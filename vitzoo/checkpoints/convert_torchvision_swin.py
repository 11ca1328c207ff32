"""torchvision Swin Transformers -> vitzoo ``VideoSwin`` (exact: same outputs, same stage features).

* ``SwinTransformer3d`` (``swin3d_t``, ``swin3d_s``, ``swin3d_b`` or built directly): the video model, with
  ``clipped_window_bias="torchvision"`` so that it matches torchvision at every input size, window clipping
  included (see :func:`vitzoo.layers.windows.relative_position_index`).
* ``SwinTransformer`` (2-D ``swin_t``, ``swin_s``, ``swin_b``): a one-frame image Swin. It matches torchvision
  wherever every stage's grid is at least the window (at 224 px: all stages): on smaller grids torchvision's 2-D
  Swin pads the window where the video one (and vitzoo) clips it.

The constructor arguments are read off the module; what vitzoo does not implement (Swin V2 blocks, attention
without a projection bias, non-GELU MLPs, another shift pattern, ...) raises ``NotImplementedError`` naming it.
:func:`torchvision_swin_state` maps a bare torchvision state dict (e.g. a downloaded ``swin3d_t-*.pth``) to
vitzoo's keys.
"""

from __future__ import annotations

import logging
import re

import torch
from torch import nn

from vitzoo.checkpoints.checked import load_checked
from vitzoo.errors import CheckpointFileError, UnsupportedFeatureError
from vitzoo.models import build_model
from vitzoo.models.swin import VideoSwin
from vitzoo.models.swin_config import ImageSwinConfig, SwinConfig

log = logging.getLogger(__name__)

IMAGE_CLASS, VIDEO_CLASS = "SwinTransformer", "SwinTransformer3d"


def _stages(features: nn.Sequential, image: bool) -> tuple[list[nn.Sequential], list[nn.Module]]:
    """The block stages and patch-merging layers of a torchvision ``features`` stack (stem excluded)."""
    body = list(features)[1:] if image else list(features)
    return body[0::2], body[1::2]


def _unsupported(model: nn.Module, image: bool) -> list[str]:
    """Names of the features of a torchvision Swin that vitzoo does not implement (empty: convertible)."""
    stages, merges = _stages(model.features, image)
    blocks = [blk for stage in stages for blk in stage]
    window = list(blocks[0].attn.window_size)
    norms = [m for b in blocks for m in (b.norm1, b.norm2)] + [getattr(m, "norm", None) for m in merges]
    norms.append(model.norm)
    odd_norm = next((m for m in norms if type(m) is not nn.LayerNorm), None)
    embed = getattr(model, "patch_embed", None)
    found = {
        f"block={type(blocks[0]).__name__} (only SwinTransformerBlock, Swin V1)": any(
            type(b).__name__ != "SwinTransformerBlock" for b in blocks
        ),
        f"downsample_layer={type(merges[0]).__name__ if merges else ''} (only PatchMerging)": any(
            type(m).__name__ != "PatchMerging" for m in merges
        ),
        f"norm_layer={type(odd_norm).__name__} (vitzoo uses LayerNorm)": odd_norm is not None,
        f"patch_embed={type(embed).__name__} (only torchvision's PatchEmbed3d)": not image
        and f"{type(embed).__module__}.{type(embed).__qualname__}"
        != "torchvision.models.video.swin_transformer.PatchEmbed3d",
        "blocks with different window sizes": any(list(b.attn.window_size) != window for b in blocks),
        "a shift pattern other than 0, window // 2 alternating": any(
            list(b.attn.shift_size) != [0 if j % 2 == 0 else w // 2 for w in window]
            for stage in stages
            for j, b in enumerate(stage)
        ),
        "attention without output-projection bias": any(b.attn.proj.bias is None for b in blocks),
        "an MLP activation other than exact GELU": any(
            not isinstance(b.mlp[1], nn.GELU) or b.mlp[1].approximate != "none" for b in blocks
        ),
    }
    return [name for name, present in found.items() if present]


def _layer_norm_eps(model: nn.Module) -> float:
    eps = {m.eps for m in model.modules() if isinstance(m, nn.LayerNorm)}
    if len(eps) != 1:
        raise UnsupportedFeatureError(f"LayerNorms with different eps {sorted(eps)}: vitzoo uses one norm_eps")
    return eps.pop()


def config_from_torchvision_swin(
    model: nn.Module, *, num_frames: int = 32, img_size: int | tuple[int, int] = 224, dynamic_size: bool = True
) -> SwinConfig:
    """A :class:`SwinConfig` read off a torchvision ``SwinTransformer3d`` (or 2-D ``SwinTransformer``).

    torchvision models take any input size, so the converted model is built with ``dynamic_size=True`` by default;
    ``num_frames`` / ``img_size`` are only the configured (example) size (a 2-D model always has one frame).
    """
    name = type(model).__name__
    if name not in (IMAGE_CLASS, VIDEO_CLASS):
        raise TypeError(f"expected a torchvision SwinTransformer3d or SwinTransformer, got {name}")
    image = name == IMAGE_CLASS
    found = _unsupported(model, image)
    if found:
        raise UnsupportedFeatureError(f"torchvision {name} with {'; '.join(found)} is not supported by vitzoo")
    stages, _ = _stages(model.features, image)
    first = stages[0][0]
    if image:
        conv, patch_norm = model.features[0][0], True
        tubelet, patch = 1, conv.kernel_size
        window = (1, *first.attn.window_size)
    else:
        conv, patch_norm = model.patch_embed.proj, not isinstance(model.patch_embed.norm, nn.Identity)
        tubelet, patch = conv.kernel_size[0], conv.kernel_size[1:]
        window = tuple(first.attn.window_size)
    if patch[0] != patch[1]:
        raise UnsupportedFeatureError(f"non-square patches {tuple(patch)} are not supported by vitzoo")
    widths = tuple(stage[0].norm1.normalized_shape[0] for stage in stages)
    mlp_ratio = first.mlp[0].out_features / widths[0]
    last_block = stages[-1][-1]
    return (ImageSwinConfig if image else SwinConfig)(
        img_size=img_size,
        num_frames=1 if image else num_frames,
        in_chans=conv.in_channels,
        num_classes=model.head.out_features,
        dynamic_size=dynamic_size,
        patch_size=patch[0],
        tubelet_size=tubelet,
        widths=widths,
        depths=tuple(len(stage) for stage in stages),
        num_heads=tuple(stage[0].attn.num_heads for stage in stages),
        window_size=window,
        mlp_ratio=mlp_ratio,
        qkv_bias=first.attn.qkv.bias is not None,
        patch_norm=patch_norm,
        norm_eps=_layer_norm_eps(model),
        clipped_window_bias="torchvision",
        attn_drop_rate=first.attn.attention_dropout,
        proj_drop_rate=first.attn.dropout,
        drop_path_rate=last_block.stochastic_depth.p,
    )


# torchvision key (after the stage / merge index is known) -> vitzoo key
_BLOCK_KEYS = {"mlp.0.": "mlp.fc1.", "mlp.3.": "mlp.fc2."}
_IGNORED = re.compile(r"(relative_position_index)$")


def torchvision_swin_state(state: dict[str, torch.Tensor], *, image: bool) -> dict[str, torch.Tensor]:
    """A torchvision Swin state dict (``features.*``) with vitzoo's keys; 2-D patch kernels get a time axis of 1.

    ``image``: the 2-D ``SwinTransformer`` layout (stem at ``features.0``, stages from ``features.1``) rather than
    ``SwinTransformer3d``'s (``patch_embed``, stages from ``features.0``). Relative-position indices (buffers)
    are dropped; any key not understood raises.
    """
    out: dict[str, torch.Tensor] = {}
    first_stage = 1 if image else 0
    for key, value in state.items():
        if _IGNORED.search(key):
            continue
        if image and key.startswith("features.0."):
            rest = key[len("features.0.") :]
            mapped = {"0.weight": "patch_embed.proj.weight", "0.bias": "patch_embed.proj.bias",
                      "2.weight": "patch_embed.norm.weight", "2.bias": "patch_embed.norm.bias"}.get(rest)  # fmt: skip
            if mapped is None:
                raise CheckpointFileError(f"unexpected torchvision Swin stem key {key!r}")
            out[mapped] = value.unsqueeze(2) if mapped == "patch_embed.proj.weight" else value
            continue
        if m := re.match(r"features\.(\d+)\.(.*)$", key):
            index, rest = int(m[1]) - first_stage, m[2]
            stage, is_merge = divmod(index, 2)
            if is_merge:
                out[f"layers.{stage + 1}.downsample.{rest}"] = value
                continue
            blk, _, rest = rest.partition(".")
            for old, new in _BLOCK_KEYS.items():
                rest = rest.replace(old, new) if rest.startswith(old) else rest
            out[f"layers.{stage}.blocks.{blk}.{rest}"] = value
            continue
        if key.split(".")[0] in ("patch_embed", "norm", "head"):
            out[key] = value
            continue
        raise CheckpointFileError(f"unexpected torchvision Swin key {key!r}")
    return out


def from_torchvision_swin(model: nn.Module, **size) -> VideoSwin:
    """Convert a torchvision ``SwinTransformer3d`` / ``SwinTransformer`` (weights included); eval mode like the input.

    ``size``: ``num_frames``, ``img_size``, ``dynamic_size`` (see :func:`config_from_torchvision_swin`).
    """
    cfg = config_from_torchvision_swin(model, **size)
    out = build_model(cfg)  # a VideoSwin, or an ImageSwin for the 2-D model
    state = torchvision_swin_state(model.state_dict(), image=type(model).__name__ == IMAGE_CLASS)
    load_checked(out, state, source=f"torchvision {type(model).__name__}")
    log.info("converted torchvision %s: %s", type(model).__name__, cfg)
    return out.train(model.training)
