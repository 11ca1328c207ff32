"""Files of a checkpoint folder: a local directory or a Hugging Face Hub repository (``hf-hub:org/name[@revision]``).

Hub files are fetched with ``huggingface_hub.hf_hub_download``, so they land in (and are read from) the Hugging
Face cache (``$HF_HOME/hub``, or ``$HF_HUB_CACHE``): the first use downloads where a network exists, later ones
(and any use with ``HF_HUB_OFFLINE=1``) read the cache. A file that is neither cached nor reachable raises one
:class:`HubFileMissing` line naming the repository and how to fetch it. Weights are read as one
``model.safetensors``, sharded safetensors (``model.safetensors.index.json``) or a ``pytorch_model.bin`` (read with
``torch.load(weights_only=True)``), in that order of preference.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vitzoo.checkpoints.io import read_state_dict

log = logging.getLogger(__name__)

HUB_PREFIX = "hf-hub:"
# Weight files in order of preference: (file, index of shards or None).
WEIGHT_FILES = (
    ("model.safetensors", None),
    (None, "model.safetensors.index.json"),
    ("pytorch_model.bin", None),
    (None, "pytorch_model.bin.index.json"),
)


class HubFileMissing(FileNotFoundError):
    """A Hub file that is neither in the local cache nor downloadable now."""


@dataclass(frozen=True)
class HubName:
    """``hf-hub:<repo_id>[@<revision>]``."""

    repo_id: str
    revision: str | None = None

    def __str__(self) -> str:
        return f"{HUB_PREFIX}{self.repo_id}" + (f"@{self.revision}" if self.revision else "")


def is_hub_name(source: Any) -> bool:
    """Whether ``source`` is a string starting with ``hf-hub:``."""
    return isinstance(source, str) and source.startswith(HUB_PREFIX)


def parse_hub_name(text: str) -> HubName:
    """``"hf-hub:org/name@rev"`` -> ``HubName("org/name", "rev")``; raises ``ValueError`` for a malformed name."""
    if not is_hub_name(text):
        raise ValueError(f"{text!r} is not a Hub name; expected 'hf-hub:<org>/<name>[@<revision>]'")
    repo_id, _, revision = text[len(HUB_PREFIX) :].partition("@")
    parts = repo_id.split("/")
    if not repo_id or len(parts) > 2 or not all(parts) or (_ and not revision):
        raise ValueError(f"malformed Hub name {text!r}; expected 'hf-hub:<org>/<name>[@<revision>]'")
    return HubName(repo_id, revision or None)


class CheckpointFiles:
    """The files of one checkpoint folder, fetched on demand (:meth:`get`)."""

    description: str

    def get(self, name: str) -> Path | None:
        """Local path of file ``name``, or None when the folder has no such file."""
        raise NotImplementedError

    def require(self, name: str) -> Path:
        """Like :meth:`get`, but a missing file raises ``FileNotFoundError`` naming the folder."""
        path = self.get(name)
        if path is None:
            raise FileNotFoundError(f"{self.description} has no {name}")
        return path

    def json(self, name: str) -> dict[str, Any] | None:
        """The parsed JSON file ``name``, or None when absent."""
        path = self.get(name)
        return None if path is None else json.loads(path.read_text())

    def state_dict(self) -> dict[str, torch.Tensor]:
        """All tensors of the folder's weights (single file or shards), on the CPU."""
        for single, index in WEIGHT_FILES:
            if single is not None and (path := self.get(single)) is not None:
                log.info("%s: reading %s", self.description, single)
                return read_state_dict(path)
            if index is not None and (index_path := self.get(index)) is not None:
                shards = sorted(set(json.loads(index_path.read_text())["weight_map"].values()))
                log.info("%s: reading %d shards listed in %s", self.description, len(shards), index)
                state: dict[str, torch.Tensor] = {}
                for shard in shards:
                    state.update(read_state_dict(self.require(shard)))
                return state
        names = ", ".join(n for pair in WEIGHT_FILES for n in pair if n)
        raise FileNotFoundError(f"{self.description} has no weights (looked for {names})")


class FolderFiles(CheckpointFiles):
    """A checkpoint folder on disk (e.g. written by ``save_pretrained`` or ``hf download --local-dir``)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.description = str(self.folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"no checkpoint folder {self.folder}")

    def get(self, name: str) -> Path | None:
        path = self.folder / name
        return path if path.is_file() else None


class HubFiles(CheckpointFiles):
    """A Hub repository, read through the Hugging Face cache."""

    def __init__(self, name: HubName) -> None:
        self.name = name
        self.description = str(name)
        self.unreachable: list[str] = []  # files neither cached nor downloadable

    def get(self, name: str) -> Path | None:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

        try:
            return Path(hf_hub_download(self.name.repo_id, name, revision=self.name.revision))
        except LocalEntryNotFoundError:  # (a subclass of EntryNotFoundError: caught first)
            self.unreachable.append(name)
            return None  # neither cached nor reachable: reported by require() / state_dict()
        except EntryNotFoundError:
            return None  # the Hub answered: the repository has no such file

    def require(self, name: str) -> Path:
        path = self.get(name)
        if path is None:
            raise (
                self.missing_error(name)
                if name in self.unreachable
                else FileNotFoundError(f"{self.description} has no {name}")
            )
        return path

    def state_dict(self) -> dict[str, torch.Tensor]:
        try:
            return super().state_dict()
        except FileNotFoundError as err:
            if self.unreachable and not isinstance(err, HubFileMissing):
                raise self.missing_error("its weights") from None
            raise

    def missing_error(self, what: str) -> HubFileMissing:
        """The one-line error for a file that is neither cached nor downloadable now."""
        from huggingface_hub import constants

        offline = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "the Hub cannot be reached"
        rev = f" --revision {self.name.revision}" if self.name.revision else ""
        return HubFileMissing(
            f"{self.description}: {what} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and {offline}; "
            f"fetch it where a network exists with `hf download {self.name.repo_id}{rev}` and copy that cache here "
            "(or point HF_HOME at a cache that has it)"
        )


def checkpoint_files(source: str | os.PathLike) -> CheckpointFiles:
    """The files of ``source``: a ``hf-hub:`` name or a local folder."""
    if is_hub_name(source):
        return HubFiles(parse_hub_name(str(source)))
    return FolderFiles(source)
