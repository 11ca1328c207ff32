"""Helpers shared by the tests, imported as ``tests.helpers.<module>`` (never copied into a test file).

- ``reference``: plain-softmax attention and other reference layers without vitzoo code;
- ``hub_sources``: tiny random timm / transformers checkpoints in the layouts people download;
- ``hub_cache``: a Hugging Face Hub cache on disk (behind the ``hub_cache`` fixture);
- ``zoo``: shrink any registered model to a tiny input (registry-wide tests);
- ``training``: random-tensor datasets, nano models, a label-free task, a disk that fills up;
- ``ssl_inputs``: the SSL tests' backbone names and float64 multi-view embeddings;
- ``ssl_gather_cases``: the gathered losses and global batch of the 1-, threaded and 2-process checks.

``REPO_ROOT`` is the checkout the tests belong to: recipes live in ``REPO_ROOT / "configs"``, and a subprocess that
imports ``tests.*`` or this checkout's ``vitzoo`` gets ``REPO_ROOT`` on its ``PYTHONPATH``.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
