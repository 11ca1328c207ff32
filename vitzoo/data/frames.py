"""Clips from folders of pre-extracted JPEG frames (the ``rawframes`` layout: ``<folder>/img_00001.jpg ...``).

:class:`FrameFolderDataset` is a :class:`~vitzoo.data.datasets.VideoClipDataset` whose samples are frame folders
with a known frame count: the same samplers pick the frames (0-based indices; frame ``i`` is file
``img_{i + 1:05d}.jpg``), the frames a clip needs are read and decoded together (``torchvision.io.decode_jpeg`` on
a list), and views, transforms, seeds and the error policy are the video datasets'.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.io import ImageReadMode, decode_jpeg, read_file

from vitzoo.data.datasets import VideoClipDataset
from vitzoo.data.errors import DataConfigError, VideoDecodeError

FRAME_NAME = "img_{:05d}.jpg"


def read_jpeg_frames(folder: Path, indices: np.ndarray) -> torch.Tensor:
    """Frames ``indices`` (0-based) of a frame folder as ``(N, 3, H, W)`` uint8; each file is decoded once."""
    unique, inverse = np.unique(indices, return_inverse=True)
    data = []
    for i in unique:
        path = folder / FRAME_NAME.format(int(i) + 1)
        try:
            data.append(read_file(str(path)))
        except (OSError, RuntimeError) as exc:
            raise VideoDecodeError(folder, f"cannot read frame {path.name}: {exc}") from None
    try:
        decoded = decode_jpeg(data, mode=ImageReadMode.RGB)  # list of (3, H, W)
    except RuntimeError as exc:
        raise VideoDecodeError(folder, f"a frame is not a decodable JPEG: {exc}") from None
    if len({tuple(f.shape) for f in decoded}) != 1:
        raise VideoDecodeError(folder, "its frames differ in size")
    return torch.stack(decoded)[torch.from_numpy(inverse.reshape(-1))]


class FrameFolderDataset(VideoClipDataset):
    """Clips from frame folders.

    Args:
        samples: ``[(frame folder, label), ...]``.
        num_frames: the frame count of every folder (from the list file), in order.
        **options: keyword arguments of :class:`VideoClipDataset` (``sampler`` is required; ``backend`` is unused;
            ``decode_short_side`` resizes after decoding).
    """

    def __init__(self, samples: Sequence[tuple[str | Path, int]], num_frames: Sequence[int], **options) -> None:
        super().__init__(samples, **options)
        if len(num_frames) != len(self.samples) or min(num_frames, default=1) < 1:
            raise DataConfigError("num_frames must give a count >= 1 for every sample")
        self.frame_counts = [int(n) for n in num_frames]

    def read_frames(self, index: int, rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        """The sampled frames of frame folder ``index``, ``(K*T, 3, H, W)`` uint8, and ``K``."""
        folder, _ = self.samples[index]
        try:
            indices = self.sampler(self.frame_counts[index], rng, fps=None)  # (K, T)
        except ValueError as exc:
            raise VideoDecodeError(folder, f"frame sampling failed: {exc}") from exc
        frames = read_jpeg_frames(folder, indices.reshape(-1))
        if self.decode_short_side is not None:
            h, w = frames.shape[-2:]
            scale = self.decode_short_side / min(h, w)
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            frames = F.interpolate(frames.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
            frames = frames.round().clamp(0, 255).to(torch.uint8)
        return frames, indices.shape[0]
