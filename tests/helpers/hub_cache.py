"""A Hugging Face Hub cache on disk, filled from local folders (the ``hub_cache`` fixture serves one)."""

from __future__ import annotations

import hashlib
from pathlib import Path


class HubCache:
    """A Hugging Face Hub cache on disk, in huggingface_hub's layout: ``models--org--name/`` with ``blobs/``
    (content-addressed files), ``snapshots/<commit>/`` (links to the blobs) and ``refs/<revision>`` (the commit)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def add(self, repo_id: str, folder: Path, *, revision: str = "main") -> str:
        """Place the files of ``folder`` as ``repo_id``'s snapshot at ``revision``; returns its ``hf-hub:`` name."""
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
