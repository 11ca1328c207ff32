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


class HubCache:
    """A Hugging Face Hub cache on disk, in huggingface_hub's layout: ``models--org--name/`` with ``blobs/``
    (content-addressed files), ``snapshots/<commit>/`` (links to the blobs) and ``refs/<revision>`` (the commit)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def add(self, repo_id: str, folder: Path, *, revision: str = "main") -> str:
        """Place the files of ``folder`` as ``repo_id``'s snapshot at ``revision``; returns its ``hf-hub:`` name."""
        import hashlib

        repo = self.root / f"models--{repo_id.replace('/', '--')}"
        commit = hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest()
        snapshot = repo / "snapshots" / commit
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            data = path.read_bytes()
            blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(data)
            link = snapshot / path.relative_to(folder)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(Path("../" * (len(link.relative_to(repo).parts) - 1)) / "blobs" / blob.name)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / revision).write_text(commit)
        return f"hf-hub:{repo_id}" + ("" if revision == "main" else f"@{revision}")

    def snapshot(self, repo_id: str, revision: str = "main") -> Path:
        """The snapshot folder of ``repo_id`` at ``revision``."""
        repo = self.root / f"models--{repo_id.replace('/', '--')}"
        return repo / "snapshots" / (repo / "refs" / revision).read_text()


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
