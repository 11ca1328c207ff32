"""Positional-embedding helpers shared by the models (run time) and the checkpoint fix-ups (load time)."""

from __future__ import annotations

import torch
from timm.layers import resample_abs_pos_embed, trunc_normal_
from torch import nn


def resample_pos_embed(
    pos_embed: torch.Tensor,
    *,
    old_grid: tuple[int, int],
    new_grid: tuple[int, int],
    num_prefix_tokens: int = 0,
    antialias: bool = True,
) -> torch.Tensor:
    """Resample ``(1, P + h*w, D)`` positional embeddings from ``old_grid`` to ``new_grid`` (bicubic).

    The first ``num_prefix_tokens`` entries (class token) are kept unchanged. Uses timm's
    ``resample_abs_pos_embed`` so results equal timm's dynamic-size path exactly; ``antialias=False`` gives
    plain bicubic interpolation (HF's DINOv2), which differs from the antialiased kernel even when enlarging.
    """
    expected = num_prefix_tokens + old_grid[0] * old_grid[1]
    if pos_embed.ndim != 3 or pos_embed.shape[0] != 1 or pos_embed.shape[1] != expected:
        raise ValueError(
            f"pos_embed of shape {tuple(pos_embed.shape)} does not match grid {old_grid} "
            f"with {num_prefix_tokens} prefix tokens (expected length {expected})"
        )
    if tuple(old_grid) == tuple(new_grid):
        return pos_embed
    return resample_abs_pos_embed(
        pos_embed,
        new_size=list(new_grid),
        old_size=list(old_grid),
        num_prefix_tokens=num_prefix_tokens,
        antialias=antialias,
    )


def learned_embedding(*shape: int, std: float = 0.02) -> nn.Parameter:
    """A parameter initialised from a truncated normal (``std=0`` gives zeros)."""
    param = nn.Parameter(torch.zeros(*shape))
    if std > 0:
        trunc_normal_(param, std=std)
    return param


def sincos_table(length: int, dim: int) -> torch.Tensor:
    """The fixed 1-D sinusoid table ``(1, length, dim)`` of "Attention is all you need" (VideoMAE's position table).

    Entry ``(n, j)`` is ``sin(n / 10000^(2i / dim))`` for even ``j = 2i`` and ``cos`` of the same angle for odd
    ``j = 2i + 1``; computed in float64, returned in float32 (as VideoMAE's numpy table is).
    """
    position = torch.arange(length, dtype=torch.float64)[:, None]  # (L, 1)
    exponent = 2 * (torch.arange(dim) // 2).to(torch.float64) / dim  # (D,)
    angles = position / torch.pow(torch.tensor(10000.0, dtype=torch.float64), exponent)  # (L, D)
    table = torch.where(torch.arange(dim) % 2 == 0, torch.sin(angles), torch.cos(angles))
    return table.to(torch.float32)[None]  # (1, L, D)


def resample_temporal_pos_embed(pos_embed: torch.Tensor, *, new_len: int, num_prefix_tokens: int = 0) -> torch.Tensor:
    """Linearly interpolate ``(1, P + T, D)`` temporal embeddings to ``P + new_len`` (prefix kept)."""
    prefix, pe = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    if pe.shape[1] == new_len:
        return pos_embed
    pe = torch.nn.functional.interpolate(
        pe.transpose(1, 2).float(), size=new_len, mode="linear", align_corners=False
    )  # (1, D, T')
    return torch.cat([prefix, pe.transpose(1, 2).to(pos_embed.dtype)], dim=1)  # (1, P + T', D)


def resample_spacetime_pos_embed(
    pos_embed: torch.Tensor,
    *,
    old_shape: tuple[int, int, int],
    new_shape: tuple[int, int, int],
    num_prefix_tokens: int = 0,
) -> torch.Tensor:
    """Resample joint ``(1, P + T*h*w, D)`` embeddings from grid ``(T, h, w)`` to ``(T', h', w')``.

    Space is resampled bicubically per time step (as :func:`resample_pos_embed`), then time linearly.
    """
    (t_old, h_old, w_old), (t_new, h_new, w_new) = old_shape, new_shape
    if tuple(old_shape) == tuple(new_shape):
        return pos_embed
    prefix, pe = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    frames = pe.reshape(t_old, h_old * w_old, -1)  # (T, h*w, D)
    frames = torch.cat(
        [resample_pos_embed(f[None], old_grid=(h_old, w_old), new_grid=(h_new, w_new)) for f in frames]
    )  # (T, h'*w', D)
    per_location = frames.transpose(0, 1)  # (h'*w', T, D)
    per_location = resample_temporal_pos_embed(per_location, new_len=t_new)  # (h'*w', T', D)
    pe = per_location.transpose(0, 1).reshape(1, t_new * h_new * w_new, -1)  # (1, T'*h'*w', D)
    return torch.cat([prefix, pe], dim=1)
