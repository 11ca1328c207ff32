"""A tiny image-folder dataset on disk (``root/{train,val}/{a,b}/*.png``) for the image SSL recipes."""

from __future__ import annotations

from pathlib import Path

import torch


def write_image_folders(root: Path, *, counts: tuple[tuple[str, int], ...] = (("train", 4), ("val", 2))) -> Path:
    """Random 40 x 48 RGB PNGs, ``count`` per class ``a`` and ``b`` of each split; returns ``root``."""
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for split, count in counts:
        for cls in ("a", "b"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = torch.randint(0, 256, (40, 48, 3), generator=g, dtype=torch.uint8).numpy()
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root
