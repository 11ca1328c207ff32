"""What a masked autoencoder sees and rebuilds, as a PNG: original / masked input / reconstruction.

For a video backbone each clip takes three rows of its frames; for an image backbone the images stand side by side
in three rows. The masked input shows the hidden patches grey; the reconstruction shows the decoder's pixels in
the hidden patches and the visible patches as they were (as MAE's figures do), with the per-patch normalisation
undone when the model reconstructs normalised pixels. The masks come from the task's own generator seeded with
``(0, index)``, so the pictures of successive validations show the same clips under the same masks.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from einops import rearrange
from torch.utils.data import Dataset

from vitzoo.data.masking import sample_generator
from vitzoo.durable import write_atomic

ROWS = ("original", "masked input", "reconstruction")


def pixel_mask(mask: torch.Tensor, grid: tuple[int, int, int], patch: tuple[int, int, int]) -> torch.Tensor:
    """Token mask ``(B, L)`` over a ``(t, h, w)`` grid -> pixel mask ``(B, 1, T, H, W)`` (True = hidden), each token
    covering ``patch = (frames, rows, columns)`` pixels."""
    t, h, w = grid
    m = rearrange(mask, "b (t h w) -> b t h w", t=t, h=h, w=w)  # (B, t, h, w)
    for axis, size in zip((1, 2, 3), patch, strict=True):
        m = m.repeat_interleave(size, dim=axis)
    return m[:, None]  # (B, 1, T, H, W)


def reconstruction_rows(task, clips: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(B, 3, C, T, H, W)`` pixels in [0, 1]: original, masked input, reconstruction of each clip (images: ``T =
    1``). ``task`` is a :class:`~vitzoo.ssl.methods.masked.MaskedModeling`; ``clips`` are normalised inputs."""
    model = task.model
    mean = torch.tensor(model.cfg.mean, device=clips.device).view(1, -1, 1, 1, 1)
    std = torch.tensor(model.cfg.std, device=clips.device).view(1, -1, 1, 1, 1)
    was_training = task.mae.training
    task.mae.eval()
    try:
        with torch.no_grad():
            rebuilt = task.mae.reconstruct(clips, mask).float()
    finally:
        task.mae.train(was_training)
    if clips.ndim == 4:  # images (B, C, H, W) -> (B, C, 1, H, W)
        clips, rebuilt = clips[:, :, None], rebuilt[:, :, None]
    original = (clips.float() * std + mean).clamp(0, 1)
    grid, patch = tuple(task.mae.grid), tuple(task.mae.patch)  # images: (h, w), (p, p)
    if len(grid) == 2:
        grid, patch = (1, *grid), (1, *patch)
    hidden = pixel_mask(mask, grid, patch)  # (B, 1, T, H, W)
    masked = torch.where(hidden, torch.full_like(original, 0.5), original)
    rebuilt = torch.where(hidden, (rebuilt * std + mean).clamp(0, 1), original)  # the visible patches as they were
    return torch.stack([original, masked, rebuilt], dim=1)  # (B, 3, C, T, H, W)


def render(rows: torch.Tensor) -> bytes:
    """PNG bytes of :func:`reconstruction_rows`' output: three rows per clip, one column per frame (images: the
    images side by side in three rows)."""
    from io import BytesIO

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if rows.shape[3] == 1:  # images: (B, 3, C, 1, H, W) -> one group of B columns
        rows = rearrange(rows, "b r c 1 h w -> 1 r c b h w")
    groups, frames = rows.shape[0], rows.shape[3]
    fig = Figure(figsize=(1.0 * frames + 1.2, 1.0 * 3 * groups), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(3 * groups, frames, squeeze=False)
    for g in range(groups):
        for r, name in enumerate(ROWS):
            for f in range(frames):
                ax = axes[3 * g + r, f]
                ax.imshow(rows[g, r, :, f].permute(1, 2, 0).cpu().numpy(), interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
            axes[3 * g + r, 0].set_ylabel(name, fontsize=8)
    fig.tight_layout(pad=0.2)
    buffer = BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def write_reconstruction(task, dataset: Dataset, path: str | os.PathLike, *, count: int = 4) -> Path:
    """Write the picture of the first ``count`` samples (``(input, label)``) of ``dataset`` to ``path``."""
    count = min(count, len(dataset))
    if count < 1:
        raise ValueError("the reconstruction picture needs at least one sample")
    device = next(task.mae.parameters()).device
    clips = torch.stack([torch.as_tensor(dataset[i][0]) for i in range(count)]).to(device)
    mask_fn, _ = task.mask_generators()
    mask = torch.stack([mask_fn(sample_generator(0, i)) for i in range(count)]).to(device)  # (B, L)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = render(reconstruction_rows(task, clips, mask))
    write_atomic(path, lambda f: f.write(data))
    return path
