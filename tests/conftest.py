"""Shared fixtures: deterministic seeds, the plain-softmax attention switch."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # make tests/reference.py importable as `reference`


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


class _ReferenceSwitch:
    def __init__(self, monkeypatch):
        self._mp = monkeypatch

    def enable(self) -> None:
        """From now on (until the test ends) every SDPA call runs the plain-softmax reference."""
        from reference import softmax_attention

        self._mp.setattr(torch.nn.functional, "scaled_dot_product_attention", softmax_attention)


@pytest.fixture
def reference_attention(monkeypatch):
    """A switch that routes SDPA through the plain-softmax reference; undone after the test."""
    return _ReferenceSwitch(monkeypatch)
