"""Weight files: safetensors with config metadata, loading reports, legacy pickles only with weights_only."""

from __future__ import annotations

import logging

import pytest
import torch
from safetensors.torch import save_file

import vitzoo
from vitzoo.checkpoints.io import describe, read_state_dict
from vitzoo.errors import UnsafeCheckpointError


def test_save_writes_arch_and_config(tmp_path):
    model = vitzoo.create("vit_nano_patch8_32", num_classes=4, qk_norm=True)
    path = vitzoo.save(model, tmp_path / "m.safetensors")
    info = describe(path)
    assert info["arch"] == "vit_nano_patch8_32"
    assert info["config"]["fields"]["qk_norm"] is True and info["config"]["fields"]["num_classes"] == 4
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left no temp file


def test_save_rejects_other_suffix(tmp_path):
    with pytest.raises(ValueError, match="safetensors"):
        vitzoo.save(vitzoo.create("vit_nano_patch8_32"), tmp_path / "m.pt")


def test_load_without_metadata_explains(tmp_path):
    save_file({"x": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="no vitzoo config"):
        vitzoo.load(tmp_path / "plain.safetensors")


def test_alias_name_saved_as_canonical(tmp_path):
    model = vitzoo.create("vivit_fact_enc", depth=1, temporal_depth=1, img_size=32, num_frames=2)
    assert model.arch_name == "vivit_fact_enc_base_16x2"


def test_vit_head_reinitialised_only_when_classes_differ(tmp_path, caplog):
    src = vitzoo.create("vit_nano_patch8_32", num_classes=10)
    path = vitzoo.save(src, tmp_path / "m.safetensors")
    same = vitzoo.create("vit_nano_patch8_32", num_classes=10, pretrained=path)
    torch.testing.assert_close(same.head.weight, src.head.weight, rtol=0, atol=0)
    with caplog.at_level(logging.INFO, logger="vitzoo"):
        other = vitzoo.create("vit_nano_patch8_32", num_classes=3, pretrained=path)
    assert "head re-initialised: checkpoint has 10 classes, model has 3" in caplog.text
    torch.testing.assert_close(other.blocks[0].attn.qkv.weight, src.blocks[0].attn.qkv.weight, rtol=0, atol=0)


def test_vit_pos_embed_resampled_for_new_img_size(tmp_path, caplog):
    path = vitzoo.save(vitzoo.create("vit_nano_patch8_32"), tmp_path / "m.safetensors")
    with caplog.at_level(logging.INFO, logger="vitzoo"):
        model = vitzoo.create("vit_nano_patch8_32", img_size=48, pretrained=path)
    assert "pos_embed resampled from a 4x4 to a 6x6 grid" in caplog.text
    assert model(torch.randn(1, 3, 48, 48)).shape == (1, 1000)


def test_mismatch_says_which_architecture_fact_differs(tmp_path):
    path = vitzoo.save(vitzoo.create("vit_nano_patch8_32", qk_norm=True), tmp_path / "m.safetensors")
    assert vitzoo.create("vit_nano_patch8_32", pretrained=path).cfg.qk_norm  # taken from the checkpoint's config
    with pytest.raises(ValueError, match=r"has qk_norm=True but the model qk_norm=False; .*override qk_norm=True"):
        vitzoo.create("vit_nano_patch8_32", pretrained=path, qk_norm=False)  # an explicit override wins: no fit
    path2 = vitzoo.save(vitzoo.create("vit_nano_patch8_32", mlp_ratio=2.0), tmp_path / "m2.safetensors")
    with pytest.raises(ValueError, match=r"has mlp_ratio=2.0 but the model mlp_ratio=4.0"):
        vitzoo.create("vit_nano_patch8_32", pretrained=path2)


def test_mismatch_without_config_names_keys_with_counts(tmp_path):
    """A bare state dict (no vitzoo config) whose facts agree but whose keys do not: counts and first names."""
    from safetensors.torch import save_file

    state = vitzoo.create("vit_nano_patch8_32", qk_norm=True).state_dict()
    save_file(state, str(tmp_path / "bare.safetensors"))
    with pytest.raises(ValueError, match=r"8 unexpected keys \(blocks.0.attn.k_norm.bias, .*, \.\.\. 5 more\)"):
        vitzoo.create("vit_nano_patch8_32", pretrained=tmp_path / "bare.safetensors")


class _Evil:
    def __reduce__(self):
        return (print, ("pickle code ran",))


def test_legacy_pickle_read_with_weights_only(tmp_path):
    model = vitzoo.create("vit_nano_patch8_32")
    torch.save({"model": model.state_dict()}, tmp_path / "ok.pth")
    loaded = vitzoo.create("vit_nano_patch8_32", pretrained=tmp_path / "ok.pth")
    torch.testing.assert_close(loaded.pos_embed, model.pos_embed, rtol=0, atol=0)
    torch.save({"model": _Evil()}, tmp_path / "evil.pth")
    with pytest.raises(UnsafeCheckpointError, match="contains code") as err:
        read_state_dict(tmp_path / "evil.pth")
    assert "weights_only=False" not in str(err.value) and "\n" not in str(err.value)
