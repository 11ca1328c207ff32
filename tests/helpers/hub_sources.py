"""Tiny random checkpoints in the layouts people download: timm Hub folders and transformers folders.

Each builder makes the source library's own model at a small, non-default size, perturbs every parameter (libraries
start LayerNorms at identity, class tokens and some tables at zero, LayerScale at 1e-5: a wrong mapping of those
would go unseen) and writes it exactly as that library publishes it (timm's ``save_for_hf``, transformers'
``save_pretrained``), so tests can place the folder in a Hub cache and compare vitzoo's conversion with the
library's model read back from the same files.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from einops import rearrange

# Width 48 with 3 heads, 2 blocks, 8-pixel patches on 32-pixel images: nothing at a library default.
TIMM_TINY = dict(img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3)
HF_TINY = dict(image_size=32, patch_size=8, hidden_size=48, num_hidden_layers=2, num_attention_heads=3)
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
PERTURB = 0.05


def perturbed(model: torch.nn.Module, scale: float = PERTURB) -> torch.nn.Module:
    """``model`` with noise added to every parameter, in eval mode."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale)
    return model.eval()


def timm_folder(folder: Path, architecture: str, **kwargs) -> tuple[torch.nn.Module, Path]:
    """A perturbed tiny timm model of ``architecture`` (``name.tag`` allowed) and its Hub folder."""
    import timm
    from timm.models import save_for_hf

    model = perturbed(timm.create_model(architecture, pretrained=False, **{**TIMM_TINY, **kwargs}))
    save_for_hf(model, folder, safe_serialization=True)
    return model, folder


def hf_folder(
    folder: Path, class_name: str, config_name: str, *, preprocessor: bool = True, **kwargs
) -> tuple[torch.nn.Module, Path]:
    """A perturbed tiny transformers ``class_name`` model and its ``save_pretrained`` folder (with a
    ``preprocessor_config.json`` holding ImageNet's mean / std unless ``preprocessor=False``)."""
    import transformers

    config = getattr(transformers, config_name)(**{**HF_TINY, **kwargs})
    model = perturbed(getattr(transformers, class_name)(config))
    model.save_pretrained(folder)
    if preprocessor:
        (folder / "preprocessor_config.json").write_text(json.dumps({"image_mean": MEAN, "image_std": STD}))
    return model, folder


def hf_clip(model: torch.nn.Module, batch: int = 2) -> torch.Tensor:
    """Random HF ``pixel_values (B, T, C, H, W)`` of the size a transformers video model expects."""
    c = model.config
    return torch.randn(batch, c.num_frames, c.num_channels, c.image_size, c.image_size)


def to_vitzoo(pixel_values: torch.Tensor) -> torch.Tensor:
    """HF's ``(B, T, C, H, W)`` clips as vitzoo's ``(B, C, T, H, W)``."""
    return rearrange(pixel_values, "b t c h w -> b c t h w")


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()
