"""An undecodable image in a self-supervised image recipe (training, kNN validation, ``knn`` / ``linear-probe``)
follows ``data.on_error`` as an undecodable video does: one line naming the file, or skipped with a warning."""

from __future__ import annotations

import logging

import pytest
import torch
from PIL import Image

import vitzoo
from vitzoo.data.errors import VideoDecodeError
from vitzoo.ssl.data import knn_pair
from vitzoo.train.config import DataSpec


@pytest.fixture
def images(tmp_path):
    """``train/<a|b>/<i>.png``, 2 images per class, and one file that is not an image."""
    g = torch.Generator().manual_seed(0)
    for cls in ("a", "b"):
        (tmp_path / "train" / cls).mkdir(parents=True)
        for i in range(2):
            pixels = torch.randint(0, 256, (36, 36, 3), generator=g, dtype=torch.uint8).numpy()
            Image.fromarray(pixels).save(tmp_path / "train" / cls / f"{i}.png")
    (tmp_path / "train" / "a" / "0.png").write_bytes(b"not an image")  # sample 0
    return tmp_path


def _bank(root, on_error):
    spec = DataSpec(root=str(root), layout="folders", train="train", val=None, on_error=on_error)
    bank, _ = knn_pair(spec, vitzoo.create("vit_nano_patch8_32", num_classes=0, depth=1))
    return bank


def test_raise_names_the_file_in_one_line(images):
    with pytest.raises(VideoDecodeError) as error:  # the type front ends print as one line
        _bank(images, "raise")[0]
    message = str(error.value)
    assert "\n" not in message and message.startswith("cannot decode image") and "0.png" in message


def test_skip_substitutes_the_next_image(images, caplog):
    bank = _bank(images, "skip")
    with caplog.at_level(logging.WARNING, logger="vitzoo.ssl.image_folder"):
        image, label = bank[0]
    assert image.shape == (3, 32, 32) and label == 0 and bank.num_failures == 1
    assert "skipping sample 0" in caplog.text
    assert torch.equal(image, bank[1][0])  # sample 1, the next one
