"""Small, pure fix-ups that turn image-ViT tensors into video-model tensors.

Each function takes and returns tensors (or a state dict) and has a unit test of its own.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from typing import Literal

import torch

from vitzoo.errors import CheckpointFileError
from vitzoo.layers.pos_embed import resample_pos_embed

TubeletInit = Literal["central", "average", "repeat"]
TUBELET_INITS = typing.get_args(TubeletInit)


def inflate_patch_embed(weight: torch.Tensor, *, tubelet_size: int, mode: str = "central") -> torch.Tensor:
    """2-D patch kernel ``(D, C, p, p)`` -> 3-D tubelet kernel ``(D, C, t, p, p)``.

    - ``central``: the 2-D kernel at the middle frame ``t // 2``, zeros elsewhere, so a tubelet embeds
      exactly like its middle frame (ViViT's default).
    - ``average``: the kernel on every frame divided by ``t`` (a static clip embeds like one frame).
    - ``repeat``: the kernel on every frame, undivided (I3D-style tiling; scales static input by ``t``).
    """
    if weight.ndim != 4:
        raise ValueError(f"expected a 2-D patch kernel (D, C, p, p), got shape {tuple(weight.shape)}")
    if mode == "central":
        out = weight.new_zeros(*weight.shape[:2], tubelet_size, *weight.shape[2:])
        out[:, :, tubelet_size // 2] = weight
        return out
    if mode == "average":
        return weight.unsqueeze(2).repeat(1, 1, tubelet_size, 1, 1) / tubelet_size
    if mode == "repeat":
        return weight.unsqueeze(2).repeat(1, 1, tubelet_size, 1, 1)
    raise ValueError(f"tubelet_init={mode!r}; expected one of {TUBELET_INITS}")


def tile_temporal_pos_embed(pos_embed: torch.Tensor, *, num_tubelets: int, num_prefix_tokens: int) -> torch.Tensor:
    """Spatial ``(1, P + N, D)`` -> joint ``(1, P + T*N, D)``: the same spatial table at every time step."""
    prefix, spatial = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    return torch.cat([prefix, spatial.repeat(1, num_tubelets, 1)], dim=1)  # (1, P + T*N, D)


@dataclass(frozen=True)
class ViTLayout:
    """What a ViT state dict says about its token layout."""

    grid: tuple[int, int]  # patch grid (h, w)
    num_prefix_tokens: int  # class + distillation + register tokens (timm's order)
    pos_embed_has_prefix: bool  # False for timm's no_embed_class models
    class_token: bool = True  # the first prefix token is a class token


def prefix_token_count(state_dict: dict[str, torch.Tensor]) -> int:
    """Class (``cls_token``), distillation (``dist_token``) and register (``reg_token``, ``(1, R, D)``) tokens."""
    regs = state_dict.get("reg_token")
    return int("cls_token" in state_dict) + int("dist_token" in state_dict) + (regs.shape[1] if regs is not None else 0)


def infer_vit_layout(state_dict: dict[str, torch.Tensor], grid: tuple[int, int] | None = None) -> ViTLayout:
    """Read the patch grid and prefix handling from the prefix tokens' and ``pos_embed``'s shapes.

    ``grid`` is the source's ``(h, w)`` patch grid when known (a vitzoo file says it in its config); otherwise the
    table must fit a square grid. Raises ``ValueError`` if the positional table fits neither.
    """
    if "pos_embed" not in state_dict:
        raise CheckpointFileError("not a ViT state dict: no 'pos_embed' key")
    prefix = prefix_token_count(state_dict)
    cls = "cls_token" in state_dict
    length = state_dict["pos_embed"].shape[1]
    for has_prefix, n in ((True, length - prefix), (False, length)):
        if not (has_prefix or prefix):
            continue
        if grid is not None:
            if grid[0] * grid[1] == n:
                return ViTLayout(tuple(grid), prefix, has_prefix, cls)
            continue
        g = math.isqrt(n)
        if g * g == n:
            return ViTLayout((g, g), prefix, has_prefix, cls)
    shape = f"the {grid[0]}x{grid[1]} grid" if grid is not None else "any square grid"
    raise CheckpointFileError(f"pos_embed of length {length} with {prefix} prefix tokens does not fit {shape}")


def spatial_pos_embed(
    pos_embed: torch.Tensor, layout: ViTLayout, *, new_grid: tuple[int, int], keep_prefix: bool
) -> torch.Tensor:
    """A ViT's positional table resampled to ``new_grid = (h, w)``; the class-token entry kept only if asked.

    Entries of other prefix tokens (DeiT's distillation token, registers) are dropped: video models carry only a
    class token. A class-token entry is created as zeros when ``keep_prefix`` is asked of a table that has none.
    """
    prefix = layout.num_prefix_tokens if layout.pos_embed_has_prefix else 0
    pe = resample_pos_embed(pos_embed, old_grid=layout.grid, new_grid=tuple(new_grid), num_prefix_tokens=prefix)
    patches = pe[:, prefix:]
    if not keep_prefix:
        return patches  # (1, N, D)
    has_cls_entry = prefix > 0 and layout.class_token
    cls_part = pe[:, :1] if has_cls_entry else pe.new_zeros(1, 1, pe.shape[-1])
    return torch.cat([cls_part, patches], dim=1)  # (1, 1 + N, D)
