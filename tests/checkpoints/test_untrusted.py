"""Checkpoints from someone else: pickles with code refused (research ``args`` allowed), shard indexes confined to
their folder, a broken ``config.json`` or hub name refused in one line, an unreachable Hub failing fast."""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import vitzoo
from vitzoo.checkpoints.hub import FolderFiles, HubFiles, parse_hub_name
from vitzoo.checkpoints.io import read_state_dict
from vitzoo.errors import CheckpointFileError, InputNotFoundError, UnsafeCheckpointError, VitzooError
from vitzoo.schema import ConfigError


class _RunsCode:
    """Unpickling this would create ``path``: the test checks it never does."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_research_checkpoint_args_load_code_is_refused(tmp_path):
    """MAE / VideoMAE / DINO / DeiT checkpoints keep ``args`` (a Namespace of numpy scalars) beside the weights."""
    weights = {"w": torch.arange(4.0)}
    args = argparse.Namespace(lr=np.float64(1.5e-4), epochs=np.int64(800), dtype=np.dtype("float32"), name="mae")
    torch.save({"model": weights, "args": args, "epoch": 799}, tmp_path / "research.pth")
    assert torch.equal(read_state_dict(tmp_path / "research.pth")["w"], weights["w"])

    marker = tmp_path / "pickle_code_ran"
    torch.save({"model": weights, "args": args, "x": _RunsCode(str(marker))}, tmp_path / "evil.pth")
    with pytest.raises(UnsafeCheckpointError) as err:
        read_state_dict(tmp_path / "evil.pth")
    message = str(err.value)
    assert not marker.exists()
    assert "evil.pth" in message and "contains code (io.open)" in message
    assert "weights_only=False" not in message and "\n" not in message
    assert isinstance(err.value, (ValueError, VitzooError))


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", None], ids=["empty", "text", "truncated"])
def test_damaged_pickles_are_one_line(tmp_path, content):
    path = tmp_path / "w.pth"
    if content is None:
        torch.save({"w": torch.ones(100)}, path)
        content = path.read_bytes()[:300]
    path.write_bytes(content)
    with pytest.raises(CheckpointFileError, match="not a readable torch checkpoint") as err:
        read_state_dict(path)
    assert "\n" not in str(err.value)


@pytest.fixture
def sharded(tmp_path):
    """A saved vitzoo folder whose single weight file is split into two shards listed in an index."""
    model = vitzoo.create("vit_nano_patch8_32")
    folder = tmp_path / "folder"
    vitzoo.save_pretrained(model, folder)
    state = read_state_dict(folder / "model.safetensors")
    keys = sorted(state)
    half = len(keys) // 2
    save_file({k: state[k] for k in keys[:half]}, str(folder / "model-1.safetensors"))
    save_file({k: state[k] for k in keys[half:]}, str(folder / "model-2.safetensors"))
    (folder / "model.safetensors").unlink()
    index = {
        "weight_map": {k: "model-1.safetensors" if i < half else "model-2.safetensors" for i, k in enumerate(keys)}
    }
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder, index, model


def test_shards_inside_the_folder_load(sharded):
    folder, _, model = sharded
    loaded = FolderFiles(folder).state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("escape", ["absolute", "dotdot", "symlink"])
def test_a_shard_outside_the_folder_is_refused(sharded, tmp_path, escape):
    folder, index, _ = sharded
    outside = tmp_path / "outside.safetensors"
    save_file({"w": torch.ones(1)}, str(outside))
    name = {"absolute": str(outside), "dotdot": "../outside.safetensors", "symlink": "link.safetensors"}[escape]
    if escape == "symlink":
        (folder / "link.safetensors").symlink_to(outside)
    key = next(iter(index["weight_map"]))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {**index["weight_map"], key: name}}))
    with pytest.raises(CheckpointFileError, match="outside the folder; refused") as err:
        FolderFiles(folder).state_dict()
    assert "model.safetensors.index.json" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "text, words",
    [("{not json", "config.json is not valid JSON"), ("[1, 2]", "not an object")],
    ids=["json", "list"],
)
def test_a_tampered_config_json_is_one_line(tmp_path, text, words):
    folder = tmp_path / "folder"
    vitzoo.save_pretrained(vitzoo.create("vit_nano_patch8_32"), folder)
    (folder / "config.json").write_text(text)
    with pytest.raises(CheckpointFileError, match=words):
        vitzoo.load(folder)


@pytest.mark.parametrize("name", ["hf-hub:bad name/x", "hf-hub:org/x y", "hf-hub:a/b/c", "hf-hub:org/--x", "hf-hub:"])
def test_malformed_hub_names_are_refused_before_any_request(name, monkeypatch):
    import httpx2

    monkeypatch.setattr(httpx2.Client, "send", lambda *a, **k: pytest.fail("a request was made"))
    with pytest.raises(ConfigError, match="malformed Hub name"):
        parse_hub_name(name)
    with pytest.raises(ConfigError, match="malformed Hub name"):
        vitzoo.load(name)


@pytest.fixture
def unreachable_hub(tmp_path, monkeypatch):
    """A temporary ``HF_HOME``, no ``HF_HUB_OFFLINE``, and an endpoint nothing listens on; counts the requests."""
    import httpx2
    from huggingface_hub import constants

    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    calls: list[str] = []
    send = httpx2.Client.send

    def counted(self, request, **kwargs):
        calls.append(f"{request.method} {request.url}")
        return send(self, request, **kwargs)

    monkeypatch.setattr(httpx2.Client, "send", counted)
    return calls


def test_an_unreachable_hub_fails_fast_with_one_request(unreachable_hub):
    start = time.perf_counter()
    with pytest.raises(InputNotFoundError) as err:
        vitzoo.load("hf-hub:someone/some-model")
    elapsed = time.perf_counter() - start
    repo_calls = [c for c in unreachable_hub if "someone/some-model" in c]
    assert repo_calls == ["GET http://127.0.0.1:9/api/models/someone/some-model"], unreachable_hub
    message = str(err.value)
    assert (
        "cannot be reached" in message and "HF_HUB_OFFLINE=1" in message and "hf download someone/some-model" in message
    )
    assert "\n" not in message
    assert elapsed < 20, elapsed  # measured 0.2 s (docs/reliability.md); the time box only catches retries


def test_an_unreachable_hub_reads_what_the_cache_has(unreachable_hub, tmp_path):
    """No network and no HF_HUB_OFFLINE: one failed request, then the cached snapshot loads."""
    from huggingface_hub import constants

    from tests.helpers.hub_cache import HubCache

    folder = tmp_path / "saved"
    model = vitzoo.create("vit_nano_patch8_32")
    vitzoo.save_pretrained(model, folder)
    cache = HubCache(tmp_path / "hf_home" / "hub")
    (tmp_path / "hf_home" / "hub").mkdir(parents=True)
    name = cache.add("someone/cached", folder)
    assert str(tmp_path / "hf_home" / "hub") == constants.HF_HUB_CACHE
    loaded = vitzoo.load(name)
    assert torch.equal(loaded.pos_embed, model.pos_embed)
    assert len([c for c in unreachable_hub if "someone/cached" in c]) == 1


def test_hub_files_ask_the_hub_once(monkeypatch, tmp_path):
    """Reachable Hub: one metadata call lists the files; absent ones cost no request (was one HEAD each)."""
    from huggingface_hub import constants
    from huggingface_hub.hf_api import HfApi

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    calls = []

    class Info:
        sha = "0" * 40
        siblings = [type("S", (), {"rfilename": "config.json"})()]

    monkeypatch.setattr(HfApi, "model_info", lambda self, *a, **k: calls.append(a) or Info())
    files = HubFiles(parse_hub_name("hf-hub:org/model"))
    assert files.get("model.safetensors") is None and files.get("pytorch_model.bin") is None
    assert len(calls) == 1
