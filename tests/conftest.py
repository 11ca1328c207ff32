"""Fixtures shared by every test: deterministic seeds, the plain-softmax attention switch, an offline Hub cache.

Layout: ``tests/<subpackage>/`` holds the tests of ``vitzoo.<subpackage>`` (``bench``, ``checkpoints``, ``cli``,
``data``, ``demo``, ``encoders``, ``export``, ``layers``, ``models``, ``ssl``, ``train``), one folder per layer of
docs/architecture.md, chosen by what a file mainly tests (the converters of ``vitzoo.convert`` live in
``vitzoo.checkpoints``, so their parity tests sit in ``tests/checkpoints``). The tests of the bottom layer's single
modules (``registry``, ``progress``, ...) and the cross-cutting ones (the README example, the import layers) stay
at this root. Helpers shared between files are in the ``tests.helpers`` package; fixtures in ``conftest.py`` files
(this one for all, ``data/`` and ``ssl/`` for theirs).

Imports: ``tests/`` and every folder below it are packages (``__init__.py``), and pytest's default ``prepend``
import mode then puts the first folder above them, the repository root, on ``sys.path``. So ``from
tests.helpers.reference import softmax_attention`` and this checkout's ``vitzoo`` import the same way under
``python -m pytest`` (``make test``) and the plain ``pytest`` script, with no ``sys.path`` edit and no ini option,
and test modules get package names (``tests.train.test_config``), so file names may repeat across folders (the
``pythonpath`` ini option alone would not give that). Subprocess workers run as ``python -m tests.train.ddp_worker``
with ``tests.helpers.REPO_ROOT`` on their ``PYTHONPATH``.
"""

from __future__ import annotations

import pytest
import torch

from tests.helpers.hub_cache import HubCache
from tests.helpers.reference import softmax_attention


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


class _ReferenceSwitch:
    def __init__(self, monkeypatch):
        self._mp = monkeypatch

    def enable(self) -> None:
        """From now on (until the test ends) every SDPA call runs the plain-softmax reference."""
        self._mp.setattr(torch.nn.functional, "scaled_dot_product_attention", softmax_attention)


@pytest.fixture
def reference_attention(monkeypatch):
    """A switch that routes SDPA through the plain-softmax reference; undone after the test."""
    return _ReferenceSwitch(monkeypatch)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty offline Hub cache in a temporary ``HF_HOME`` (no test ever reaches the network).

    huggingface_hub reads ``HF_HOME`` / ``HF_HUB_OFFLINE`` when imported, so its constants are patched as well.
    """
    from huggingface_hub import constants

    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    (home / "hub").mkdir(parents=True)
    return HubCache(home / "hub")
