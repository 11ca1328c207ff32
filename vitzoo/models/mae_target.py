"""The reconstruction target of masked autoencoding, as VideoMAE computes it, and its inverse for pictures.

Clips ``(B, C, T, H, W)`` (images ``(B, C, H, W)``) arrive normalised with the model's mean / std. The target
un-normalises them to ``[0, 1]`` pixels, cuts them into the patches of the token grid (tubelets ``pt x ph x pw``)
with the pixels of a patch in ``(pt, ph, pw, C)`` order (transformers' ``VideoMAEForPreTraining`` and VideoMAE's),
and, with ``norm_pix_loss``, normalises every patch per channel: ``(x - mean) / (std + 1e-6)`` over its
``pt * ph * pw`` pixels, ``std`` the unbiased one. All of it in float32, whatever autocast says.
"""

from __future__ import annotations

import torch
from einops import rearrange

PIX_EPS = 1e-6


def patchify(x: torch.Tensor, patch: tuple[int, ...]) -> torch.Tensor:
    """``(B, C, T, H, W)`` with ``patch = (pt, ph, pw)`` (or ``(B, C, H, W)`` with ``(ph, pw)``) -> ``(B, L, N, C)``:
    ``L`` grid tokens ``(t h w)``, ``N`` pixels per patch ``(pt ph pw)``."""
    if x.ndim == 5:
        pt, ph, pw = patch
        return rearrange(x, "b c (t pt) (h ph) (w pw) -> b (t h w) (pt ph pw) c", pt=pt, ph=ph, pw=pw)
    ph, pw = patch
    return rearrange(x, "b c (h ph) (w pw) -> b (h w) (ph pw) c", ph=ph, pw=pw)


def unpatchify(patches: torch.Tensor, grid: tuple[int, ...], patch: tuple[int, ...]) -> torch.Tensor:
    """The inverse of :func:`patchify`: ``(B, L, N, C)`` on ``grid`` -> ``(B, C, T, H, W)`` (or ``(B, C, H, W)``)."""
    if len(grid) == 3:
        (t, h, w), (pt, ph, _) = grid, patch
        return rearrange(patches, "b (t h w) (pt ph pw) c -> b c (t pt) (h ph) (w pw)", t=t, h=h, w=w, pt=pt, ph=ph)
    (h, w), (ph, _) = grid, patch
    return rearrange(patches, "b (h w) (ph pw) c -> b c (h ph) (w pw)", h=h, w=w, ph=ph)


def channel_view(values: tuple[float, ...], x: torch.Tensor) -> torch.Tensor:
    """Per-channel constants shaped to broadcast over ``x`` ``(B, C, ...)``, in float32 on ``x``'s device."""
    return torch.tensor(values, dtype=torch.float32, device=x.device).reshape(-1, *([1] * (x.ndim - 2)))


def pixel_patches(x: torch.Tensor, patch: tuple[int, ...], *, mean: tuple, std: tuple) -> torch.Tensor:
    """Normalised input -> its ``[0, 1]`` pixels as patches ``(B, L, N, C)``, float32."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        frames = x.float() * channel_view(std, x) + channel_view(mean, x)  # (B, C, [T,] H, W) in [0, 1]
        return patchify(frames, patch)  # (B, L, N, C)


def patch_stats(patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per patch and channel: mean and ``std + 1e-6`` (unbiased std) over the patch's pixels, ``(B, L, 1, C)``."""
    return patches.mean(dim=-2, keepdim=True), patches.var(dim=-2, unbiased=True, keepdim=True).sqrt() + PIX_EPS


def reconstruction_target(
    x: torch.Tensor, patch: tuple[int, ...], *, mean: tuple, std: tuple, norm_pix_loss: bool
) -> torch.Tensor:
    """VideoMAE's target for every grid token: ``(B, L, N * C)`` float32 (see the module docstring)."""
    with torch.no_grad(), torch.autocast(device_type=x.device.type, enabled=False):
        patches = pixel_patches(x, patch, mean=mean, std=std)  # (B, L, N, C)
        if norm_pix_loss:
            mu, sigma = patch_stats(patches)
            patches = (patches - mu) / sigma
        return patches.flatten(2)  # (B, L, N * C)
