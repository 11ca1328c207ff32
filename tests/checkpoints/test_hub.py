"""``hf-hub:`` names read through the Hugging Face cache (offline), checkpoint folders, ``save_pretrained`` and
``push_to_hub`` (the upload mocked: no test reaches the network)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys

import pytest
import torch

import vitzoo
from tests.helpers import REPO_ROOT
from tests.helpers.hub_sources import max_diff, perturbed, timm_folder
from vitzoo.checkpoints.hub import HubFileMissing, HubName, parse_hub_name


@pytest.fixture
def vit():
    return perturbed(vitzoo.create("vit_nano_patch8_32", num_classes=7))


def test_hub_names_parse_and_malformed_ones_raise():
    assert parse_hub_name("hf-hub:org/name") == HubName("org/name", None)
    assert parse_hub_name("hf-hub:org/name.tag@v1.0") == HubName("org/name.tag", "v1.0")
    assert str(parse_hub_name("hf-hub:name@refs/pr/1")) == "hf-hub:name@refs/pr/1"
    for bad in ("hf-hub:", "hf-hub:a/b/c", "hf-hub:org/", "hf-hub:org/name@", "org/name"):
        with pytest.raises(ValueError, match="Hub name"):
            parse_hub_name(bad)


def test_uncached_repo_offline_raises_one_line_naming_it_and_the_fix(hub_cache):
    with pytest.raises(HubFileMissing) as err:
        vitzoo.load("hf-hub:org/not-cached")
    message = str(err.value)
    assert "hf-hub:org/not-cached: config.json is not in the Hugging Face cache" in message
    assert "HF_HUB_OFFLINE is set" in message and "`hf download org/not-cached`" in message
    assert str(hub_cache.root) in message and "\n" not in message
    with pytest.raises(HubFileMissing, match="--revision v2"):
        vitzoo.create("vit_nano_patch8_32", pretrained="hf-hub:org/not-cached@v2")


def test_cached_config_without_weights_names_the_weights(tmp_path, hub_cache, vit):
    vitzoo.save_pretrained(vit, tmp_path / "full")
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(tmp_path / "full" / "config.json", partial)
    with pytest.raises(HubFileMissing, match="hf-hub:org/partial: model.safetensors is not in the Hugging Face cache"):
        vitzoo.load(hub_cache.add("org/partial", partial))


def test_save_pretrained_folder_round_trips_with_a_model_card(tmp_path, vit):
    folder = vitzoo.save_pretrained(vit, tmp_path / "out", metrics={"val_top1": 0.91}, labels=list("abcdefg"))
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["library_name"] == "vitzoo" and config["architecture"] == "vit_nano_patch8_32"
    card = (folder / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: vitzoo" in card and "pipeline_tag: image-classification" in card
    for text in ("| width / depth / heads | 64 / 2 / 2 |", "mean (0.5, 0.5, 0.5)", "| val_top1 | 0.91 |", "Classes: a"):
        assert text in card, text
    x = torch.randn(2, 3, 32, 32)
    for path in (folder, folder / "model.safetensors"):  # the weight file alone carries the config too
        loaded = vitzoo.load(path)
        assert not loaded.training and loaded.arch_name == "vit_nano_patch8_32"
        with torch.no_grad():
            assert max_diff(loaded(x), vit(x)) == 0


def test_video_model_card_says_clips_and_encoder(tmp_path):
    model = vitzoo.create("vivit_joint_nano_8x2", num_classes=0)
    card = (vitzoo.save_pretrained(model, tmp_path) / "README.md").read_text()
    for text in ("pipeline_tag: video-classification", "encoder `joint`", "(B, C, T, H, W) = (B, 3, 4, 32, 32)",
                 "| patch / tubelet | 8 / 2 |", "| classes | none (features) |", "Not recorded."):  # fmt: skip
        assert text in card, text


def test_vitzoo_folder_on_the_hub_loads_and_initialises_video_models(tmp_path, hub_cache, vit, caplog):
    name = hub_cache.add("me/vit-nano", vitzoo.save_pretrained(vit, tmp_path / "out"))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert max_diff(vitzoo.load(name)(x), vit(x)) == 0
    with caplog.at_level(logging.INFO, logger="vitzoo"):
        video = vitzoo.create("vivit_fact_enc_nano_8x2", pretrained=name, num_classes=7)
    torch.testing.assert_close(video.encoder.spatial.blocks[1].attn.qkv.weight, vit.blocks[1].attn.qkv.weight)
    assert "vitzoo layout (config.json names library_name 'vitzoo')" in caplog.text


def test_revisions_resolve_through_refs_and_commit_hashes(tmp_path, hub_cache):
    first = perturbed(vitzoo.create("vit_nano_patch8_32"))
    second = perturbed(vitzoo.create("vit_nano_patch8_32"))
    hub_cache.add("me/vit", vitzoo.save_pretrained(first, tmp_path / "a"))
    name_v2 = hub_cache.add("me/vit", vitzoo.save_pretrained(second, tmp_path / "b"), revision="v2")
    commit = hub_cache.snapshot("me/vit", "v2").name
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert max_diff(vitzoo.load("hf-hub:me/vit")(x), first(x)) == 0
        assert max_diff(vitzoo.load(name_v2)(x), second(x)) == 0
        assert max_diff(vitzoo.load(f"hf-hub:me/vit@{commit}")(x), second(x)) == 0


def test_local_folders_in_other_layouts_convert_too(tmp_path):
    src, folder = timm_folder(tmp_path / "clip", "vit_base_patch16_clip_224.openai")
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert max_diff(vitzoo.load(folder)(x), src(x)) <= 1e-5
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.json").write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(ValueError, match="unrecognised checkpoint folder: its config.json has none of"):
        vitzoo.load(tmp_path / "odd")


def test_push_to_hub_uploads_the_save_pretrained_folder(tmp_path, hub_cache, vit, monkeypatch):
    import huggingface_hub

    calls = []

    class FakeApi:
        """Records the calls push_to_hub makes; keeps a copy of the uploaded folder (the network part is mocked)."""

        def __init__(self, **kwargs):
            calls.append(("init", kwargs))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))
            return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

        def upload_folder(self, *, repo_id, folder_path, **kwargs):
            calls.append(("upload_folder", repo_id, kwargs))
            shutil.copytree(folder_path, tmp_path / "uploaded")
            return "commit-info"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    info = vitzoo.push_to_hub(vit, "me/vit-nano", token="hf_x", private=True, metrics={"val_top1": 0.5})
    assert info == "commit-info"
    (_, init), (_, repo, create), (_, uploaded_to, upload) = calls
    assert init["token"] == "hf_x" and init["library_name"] == "vitzoo"
    assert repo == uploaded_to == "me/vit-nano" and create == {"private": True, "exist_ok": True}
    assert upload["commit_message"] == "Upload vitzoo model"
    assert 'vitzoo.load("hf-hub:me/vit-nano")' in (tmp_path / "uploaded" / "README.md").read_text()
    name = hub_cache.add("me/vit-nano", tmp_path / "uploaded")  # what the Hub would serve back
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert max_diff(vitzoo.load(name)(x), vit(x)) == 0


@pytest.mark.slow
def test_a_fresh_process_reads_the_cache_from_hf_home_offline(tmp_path, hub_cache, vit):
    """The real environment variables (read when huggingface_hub is imported), not patched constants."""
    hub_cache.add("me/vit-nano", vitzoo.save_pretrained(vit, tmp_path / "out"))
    code = "import vitzoo; m = vitzoo.load('hf-hub:me/vit-nano'); print(m.cfg.num_classes)"
    env = {**os.environ, "HF_HOME": str(hub_cache.root.parent), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "7"


def test_export_command_takes_hub_names_and_folders(tmp_path, hub_cache, vit, capsys):
    from vitzoo.cli.main import main

    folder = vitzoo.save_pretrained(vit, tmp_path / "out")
    name = hub_cache.add("me/vit-nano", folder)
    for source in (name, str(folder)):
        out = tmp_path / f"{len(source)}.safetensors"
        assert main(["export", source, "--out", str(out)]) == 0
        assert "freshly initialised" not in capsys.readouterr().err
        torch.testing.assert_close(vitzoo.load(out).state_dict(), vit.state_dict(), rtol=0, atol=0)
