"""Fixtures of the SSL tests: a tiny backbone without head, image or video."""

from __future__ import annotations

import pytest
import torch

import vitzoo
from tests.helpers.ssl_inputs import IMAGE_BACKBONE, VIDEO_BACKBONE


@pytest.fixture(params=[IMAGE_BACKBONE, VIDEO_BACKBONE])
def backbone(request) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """A fresh tiny backbone created with ``num_classes=0`` and the shape of one input (image or clip)."""
    torch.manual_seed(0)
    model = vitzoo.create(request.param, num_classes=0)
    shape = getattr(model, "input_shape", (3, 32, 32))
    return model, tuple(shape)
