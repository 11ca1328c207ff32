"""Pre-train the demo's image ViTs on synthetic shapes and ship them in ``weights/``.

``python -m vitzoo.demo.pretrain`` trains ``vit_micro_patch4_32`` to tell which of four shapes an image
holds and in which quadrant (16 classes, see :mod:`vitzoo.demo.shapes`), writes
``weights/vit_micro_patch4_32_shapes.safetensors`` and records it in ``weights/manifest.json``.
``--avg-pool`` trains the same ViT without a class token, classifying from the average of its patch
tokens (``..._shapes_avgpool``): the readout of the video encoders that have no class token (ViViT
Models 3 and 4), which the demo initialises from it. ``--swin`` trains the image Swin
``swin_micro_patch4_window4_32`` (fed the same images) the same way
(``swin_micro_patch4_window4_32_shapes``), which the demo inflates into ``video_swin_micro_4x2``. Each takes a few
minutes on 2 CPU cores; the demo uses the shipped files and does not rerun them.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from vitzoo.api import create, save
from vitzoo.checkpoints.io import weights_dir
from vitzoo.demo import manifest
from vitzoo.demo.shapes import NUM_CLASSES, SHAPES, make_shape_images
from vitzoo.train import fit

log = logging.getLogger(__name__)

ARCH = "vit_micro_patch4_32"
WEIGHTS_NAME = f"{ARCH}_shapes"
AVG_POOL_WEIGHTS_NAME = f"{ARCH}_shapes_avgpool"
SWIN_ARCH = "swin_micro_patch4_window4_32"  # an image Swin, fed (B, C, H, W) like the ViT
SWIN_WEIGHTS_NAME = f"{SWIN_ARCH}_shapes"
RECIPE = dict(
    data="vitzoo.demo.shapes.make_shape_images: 16 classes (4 shapes x 4 quadrants), 32 px",
    num_train=8000,
    num_val=2000,
    epochs=8,
    batch_size=64,
    lr=2e-3,
    warmup_epochs=1.0,
    weight_decay=0.05,
    seed=0,
)


def shape_dataset(num: int, *, seed: int, mean: tuple[float, ...], std: tuple[float, ...]) -> TensorDataset:
    """Normalised synthetic shape images ``(C, H, W)`` and labels as a ``TensorDataset``."""
    images, labels = make_shape_images(num, seed=seed)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    images = (images - m) / s
    return TensorDataset(images, labels)


def pretrain(*, out_dir: Path, recipe: dict = RECIPE, avg_pool: bool = False, swin: bool = False) -> Path:
    """Train the image ViT (``avg_pool``: without a class token) or the image Swin (``swin``), save it to
    ``out_dir``, add it to the manifest."""
    if swin and avg_pool:
        raise ValueError("--avg-pool is a ViT readout; the Swin always classifies from the mean of its tokens")
    torch.manual_seed(recipe["seed"])
    readout = dict(class_token=False, global_pool="avg") if avg_pool else {}
    model = create(SWIN_ARCH if swin else ARCH, num_classes=NUM_CLASSES, **readout)
    cfg = model.cfg
    train = shape_dataset(recipe["num_train"], seed=1, mean=cfg.mean, std=cfg.std)
    val = shape_dataset(recipe["num_val"], seed=2, mean=cfg.mean, std=cfg.std)
    with tempfile.TemporaryDirectory() as run_dir:
        result = fit(
            model,
            train,
            val_set=val,
            out_dir=run_dir,
            epochs=recipe["epochs"],
            batch_size=recipe["batch_size"],
            lr=recipe["lr"],
            warmup_epochs=recipe["warmup_epochs"],
            weight_decay=recipe["weight_decay"],
            seed=recipe["seed"],
        )
    final = result.evaluations[-1]
    name = SWIN_WEIGHTS_NAME if swin else AVG_POOL_WEIGHTS_NAME if avg_pool else WEIGHTS_NAME
    path = save(model, out_dir / f"{name}.safetensors")
    manifest.record(
        path,
        recipe={**recipe, **readout, "classes": [f"{s}@q{q}" for s in SHAPES for q in range(4)]},
        metrics={"val_top1": round(final.top1, 4), "val_top5": round(final.top5, 4), "num_val": final.num_samples},
        reproduce="python -m vitzoo.demo.pretrain" + (" --avg-pool" if avg_pool else "") + (" --swin" if swin else ""),
    )
    log.info("saved %s (val top-1 %.1f%%)", path, 100 * final.top1)
    return path


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: ``python -m vitzoo.demo.pretrain [--out weights/]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=weights_dir(), help="folder to write the weights into")
    parser.add_argument("--avg-pool", action="store_true", help="no class token: classify from the mean patch token")
    parser.add_argument("--swin", action="store_true", help=f"train the image Swin {SWIN_ARCH} instead of the ViT")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    pretrain(out_dir=args.out, avg_pool=args.avg_pool, swin=args.swin)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
