"""Files of a checkpoint folder: a local directory or a Hugging Face Hub repository (``hf-hub:org/name[@revision]``).

A Hub name is resolved with one metadata call (``HfApi.model_info``: the commit and the list of files, with a short
timeout and no retries); the files a reader asks for are then fetched at that commit with
``huggingface_hub.hf_hub_download``, so they land in (and are read from) the Hugging Face cache (``$HF_HOME/hub``,
or ``$HF_HUB_CACHE``) and a cached file costs no further request. With ``HF_HUB_OFFLINE=1``, or when that one call
cannot reach the Hub (no network: it fails in well under 5 s), only the cache is read, with no further request; a
file that is not cached then raises one :class:`HubFileMissing` line saying how to work offline. Weights are read as
one ``model.safetensors``, sharded safetensors (``model.safetensors.index.json``, every shard inside the folder) or
a ``pytorch_model.bin`` (read with ``torch.load(weights_only=True)``), in that order of preference.
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
from vitzoo.errors import CheckpointFileError, InputNotFoundError
from vitzoo.schema import ConfigError

log = logging.getLogger(__name__)

HUB_PREFIX = "hf-hub:"
HUB_METADATA_TIMEOUT_S = 4.0  # the one metadata call a Hub name costs (connect, read: each; no retries)
# Weight files in order of preference: (file, index of shards or None).
WEIGHT_FILES = (
    ("model.safetensors", None),
    (None, "model.safetensors.index.json"),
    ("pytorch_model.bin", None),
    (None, "pytorch_model.bin.index.json"),
)
OFFLINE_HOWTO = (
    "to work offline, fetch it where a network exists (`hf download {repo}{rev}`), copy that Hugging Face cache "
    "here (or point HF_HOME at it) and set HF_HUB_OFFLINE=1"
)


class HubFileMissing(InputNotFoundError):
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
    """``"hf-hub:org/name@rev"`` -> ``HubName("org/name", "rev")``; raises :class:`~vitzoo.schema.ConfigError` (a
    ``ValueError``) for a malformed name, before any network access."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    expected = "expected 'hf-hub:<org>/<name>[@<revision>]'"
    if not is_hub_name(text):
        raise ConfigError(f"{text!r} is not a Hub name; {expected}")
    repo_id, _, revision = text[len(HUB_PREFIX) :].partition("@")
    parts = repo_id.split("/")
    if not repo_id or len(parts) > 2 or not all(parts) or (_ and not revision):
        raise ConfigError(f"malformed Hub name {text!r}; {expected}")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        reason = " ".join(str(exc).split(". ")[0].split())
        raise ConfigError(f"malformed Hub name {text!r} ({reason}); {expected}") from None
    return HubName(repo_id, revision or None)


def _outside(where: str, name: str, index: str, what: str = "which is outside the folder") -> CheckpointFileError:
    return CheckpointFileError(
        f"{where}: {index} lists the shard {name!r}, {what}; refused (an index may name only files inside its own "
        "folder: fix the index or put the shards beside it)"
    )


def check_shard_name(where: str, name: str, *, index: str) -> None:
    """Refuse a shard name that is empty, absolute or climbs out of its folder (``..``), before anything is opened."""
    if not name or os.path.isabs(name) or "\\" in name or ".." in Path(name).parts:
        raise _outside(where, name, index)


def shard_path(folder: Path, name: str, *, index: str) -> Path:
    """The shard ``name`` listed in ``folder``'s ``index``: refused unless it resolves inside ``folder``.

    An absolute path, a ``..`` escape or a symbolic link leading out of the folder raise
    :class:`~vitzoo.errors.CheckpointFileError` (a Hugging Face cache snapshot's links into its repository's
    ``blobs/`` count as inside). Names are checked lexically first, so nothing outside is ever opened.
    """
    check_shard_name(str(folder), name, index=index)
    path = folder / name
    real = folder.resolve()
    inside = real.parent.parent if real.parent.name == "snapshots" else real  # a cache snapshot links into blobs/
    if path.exists() and not path.resolve().is_relative_to(inside):
        raise _outside(str(folder), name, index, "a link leading outside the folder")
    return path


class CheckpointFiles:
    """The files of one checkpoint folder, fetched on demand (:meth:`get`)."""

    description: str

    def get(self, name: str) -> Path | None:
        """Local path of file ``name``, or None when the folder has no such file."""
        raise NotImplementedError

    def shard(self, name: str, *, index: str) -> Path | None:
        """Local path of the shard ``name`` listed in ``index`` (which must name a file inside the folder)."""
        return self.get(name)

    def require(self, name: str) -> Path:
        """Like :meth:`get`, but a missing file raises ``FileNotFoundError`` naming the folder."""
        path = self.get(name)
        if path is None:
            raise InputNotFoundError(f"{self.description} has no {name}")
        return path

    def json(self, name: str) -> dict[str, Any] | None:
        """The parsed JSON file ``name`` (an object), or None when absent; a file that is not a JSON object raises
        :class:`~vitzoo.errors.CheckpointFileError` naming it."""
        path = self.get(name)
        if path is None:
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointFileError(
                f"{self.description}: {name} is not valid JSON ({exc}); restore the file from its source"
            ) from None
        if not isinstance(data, dict):
            raise CheckpointFileError(
                f"{self.description}: {name} holds a JSON {type(data).__name__}, not an object; restore the file "
                "from its source"
            )
        return data

    def state_dict(self) -> dict[str, torch.Tensor]:
        """All tensors of the folder's weights (single file or shards), on the CPU."""
        for single, index in WEIGHT_FILES:
            if single is not None and (path := self.get(single)) is not None:
                log.info("%s: reading %s", self.description, single)
                return read_state_dict(path)
            if index is not None and self.get(index) is not None:
                shards = self._shard_names(index)
                log.info("%s: reading %d shards listed in %s", self.description, len(shards), index)
                paths = [self.shard(shard, index=index) for shard in shards]  # every name checked before reading
                state: dict[str, torch.Tensor] = {}
                for shard, path in zip(shards, paths, strict=True):
                    if path is None:
                        raise InputNotFoundError(f"{self.description} has no {shard} (listed in {index})")
                    state.update(read_state_dict(path))
                return state
        names = ", ".join(n for pair in WEIGHT_FILES for n in pair if n)
        raise InputNotFoundError(f"{self.description} has no weights (looked for {names})")

    def _shard_names(self, index: str) -> list[str]:
        weight_map = (self.json(index) or {}).get("weight_map")
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise CheckpointFileError(
                f"{self.description}: {index} has no weight_map of tensor name -> shard file; restore the index"
            )
        return sorted(set(weight_map.values()))


class FolderFiles(CheckpointFiles):
    """A checkpoint folder on disk (e.g. written by ``save_pretrained`` or ``hf download --local-dir``)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.description = str(self.folder)
        if not self.folder.is_dir():
            raise InputNotFoundError(f"no checkpoint folder {self.folder}")

    def get(self, name: str) -> Path | None:
        path = self.folder / name
        return path if path.is_file() else None

    def shard(self, name: str, *, index: str) -> Path | None:
        path = shard_path(self.folder, name, index=index)
        return path if path.is_file() else None


class HubFiles(CheckpointFiles):
    """A Hub repository, read through the Hugging Face cache (see the module docstring for the requests made)."""

    def __init__(self, name: HubName) -> None:
        self.name = name
        self.description = str(name)
        self.unreachable: list[str] = []  # files neither cached nor downloadable
        self.offline_reason: str | None = None  # why only the cache is read (None: the Hub answered)
        self._listing: tuple[str, frozenset[str]] | None = None  # (commit, files) from the one metadata call
        self._resolved = False

    def _resolve(self) -> None:
        """The one metadata call (skipped with ``HF_HUB_OFFLINE``); a network failure switches to the cache."""
        if self._resolved:
            return
        self._resolved = True
        import httpx2
        from huggingface_hub import HfApi, constants
        from huggingface_hub.errors import (
            GatedRepoError,
            HfHubHTTPError,
            OfflineModeIsEnabled,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        if constants.HF_HUB_OFFLINE:
            self.offline_reason = "HF_HUB_OFFLINE is set"
            return
        try:
            info = HfApi().model_info(self.name.repo_id, revision=self.name.revision, timeout=HUB_METADATA_TIMEOUT_S)
        except RevisionNotFoundError:
            raise InputNotFoundError(
                f"{self.description}: the Hub repository has no revision {self.name.revision!r}; "
                "check the name after '@' (a branch, tag or commit)"
            ) from None
        except GatedRepoError:
            raise InputNotFoundError(
                f"{self.description} is a gated repository: accept its terms on the Hub and log in (`hf auth login`)"
            ) from None
        except RepositoryNotFoundError:
            raise InputNotFoundError(
                f"{self.description}: no such repository on the Hub (or it is private: log in with `hf auth login`)"
            ) from None
        except (httpx2.TransportError, OfflineModeIsEnabled, OSError) as exc:
            self.offline_reason = f"the Hub cannot be reached ({type(exc).__name__}: {' '.join(str(exc).split())})"
        except HfHubHTTPError as exc:  # the Hub answered with an error (5xx, ...): the cache may still have it
            self.offline_reason = f"the Hub answered {' '.join(str(exc).split())[:200]}"
        else:
            files = frozenset(s.rfilename for s in info.siblings or ())
            self._listing = (info.sha or self.name.revision or "main", files)
            return
        log.warning("%s: %s; reading the Hugging Face cache only", self.description, self.offline_reason)

    def get(self, name: str) -> Path | None:
        from huggingface_hub import hf_hub_download, try_to_load_from_cache
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

        self._resolve()
        if self._listing is not None:
            commit, files = self._listing
            if name not in files:
                return None  # the Hub answered: the repository has no such file
            try:
                return Path(hf_hub_download(self.name.repo_id, name, revision=commit))
            except LocalEntryNotFoundError:  # the network went away since the metadata call
                self.unreachable.append(name)
                return None
            except EntryNotFoundError:
                return None
        cached = try_to_load_from_cache(self.name.repo_id, name, revision=self.name.revision)
        if isinstance(cached, str):
            return Path(cached)
        if cached is None:
            self.unreachable.append(name)
        return None  # not cached (or cached as absent): reported by require() / state_dict()

    def shard(self, name: str, *, index: str) -> Path | None:
        check_shard_name(self.description, name, index=index)
        return self.get(name)

    def require(self, name: str) -> Path:
        path = self.get(name)
        if path is None:
            raise (
                self.missing_error(name)
                if name in self.unreachable
                else InputNotFoundError(f"{self.description} has no {name}")
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

        reason = self.offline_reason or "the Hub cannot be reached"
        rev = f" --revision {self.name.revision}" if self.name.revision else ""
        howto = OFFLINE_HOWTO.format(repo=self.name.repo_id, rev=rev)
        return HubFileMissing(
            f"{self.description}: {what} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and {reason}; "
            f"{howto}"
        )


def checkpoint_files(source: str | os.PathLike) -> CheckpointFiles:
    """The files of ``source``: a ``hf-hub:`` name or a local folder."""
    if is_hub_name(source):
        return HubFiles(parse_hub_name(str(source)))
    return FolderFiles(source)
