"""A checkpoint that does not fit says why in one line; a file's claimed config is checked before building."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import vitzoo
from vitzoo.checkpoints.io import CONFIG_KEY, read_metadata


def test_vit_of_another_width_into_a_video_model_names_both_widths(tmp_path):
    tiny = vitzoo.save(vitzoo.create("vit_tiny_patch16_224", depth=2, num_classes=0), tmp_path / "tiny.safetensors")
    with pytest.raises(ValueError) as err:
        vitzoo.create("vivit_joint_small_16x2", depth=2, num_frames=4, img_size=64, pretrained=tiny)
    message = str(err.value)
    assert "\n" not in message
    assert "embed_dim=192, num_heads=3 but the model embed_dim=384, num_heads=6" in message
    assert "vivit_joint_tiny_16x2" in message  # the registered model with the checkpoint's width and heads


def test_bare_vit_state_dict_of_another_depth_is_explained_from_its_tensors(tmp_path):
    state = vitzoo.create("vit_nano_patch8_32", depth=3).state_dict()
    save_file(state, str(tmp_path / "bare.safetensors"))
    with pytest.raises(ValueError, match=r"has depth=3 but the model depth=2; .*override depth=3"):
        vitzoo.create("vivit_fact_enc_nano_8x2", pretrained=tmp_path / "bare.safetensors")


def test_patch_and_tubelet_size_mismatch_between_video_checkpoints(tmp_path):
    src = vitzoo.save(vitzoo.create("vivit_joint_micro_4x2"), tmp_path / "micro.safetensors")
    with pytest.raises(ValueError, match=r"has .*patch_size=4.* but the model .*patch_size=8"):
        vitzoo.create("vivit_joint_nano_8x2", pretrained=src)
    state = vitzoo.create("vivit_joint_nano_8x2", tubelet_size=1, num_frames=4).state_dict()
    save_file(state, str(tmp_path / "t1.safetensors"))
    with pytest.raises(ValueError, match=r"has tubelet_size=1 but the model tubelet_size=2"):
        vitzoo.create("vivit_joint_nano_8x2", pretrained=tmp_path / "t1.safetensors")


def test_video_checkpoint_at_another_size_is_resampled(tmp_path):
    src = vitzoo.create("vivit_fact_sa_nano_8x2", num_classes=3).eval()
    path = vitzoo.save(src, tmp_path / "m.safetensors")
    model = vitzoo.create("vivit_fact_sa_nano_8x2", num_classes=3, num_frames=8, img_size=48, pretrained=path).eval()
    ref = vitzoo.load(path)
    ref.resample(num_frames=8, img_size=48)
    x = torch.randn(1, 3, 8, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=0, atol=0)


def test_ddp_prefixed_state_dict_is_unwrapped_with_a_log_line(tmp_path, caplog):
    model = vitzoo.create("vit_nano_patch8_32")
    save_file({f"module.{k}": v for k, v in model.state_dict().items()}, str(tmp_path / "ddp.safetensors"))
    with caplog.at_level("INFO", logger="vitzoo"):
        loaded = vitzoo.create("vit_nano_patch8_32", pretrained=tmp_path / "ddp.safetensors")
    assert "DistributedDataParallel" in caplog.text
    torch.testing.assert_close(loaded.pos_embed, model.pos_embed, rtol=0, atol=0)


def _lying_copy(path, tmp_path, **claims):
    """A copy of a vitzoo file whose metadata claims other config fields than its tensors have."""
    meta = read_metadata(path)
    cfg = json.loads(meta[CONFIG_KEY])
    cfg["fields"].update(claims)
    out = tmp_path / "lying.safetensors"
    from safetensors.torch import load_file

    save_file(load_file(str(path)), str(out), metadata={**meta, CONFIG_KEY: json.dumps(cfg)})
    return out


@pytest.mark.parametrize(
    "claims, message",
    [
        ({"embed_dim": 4096, "num_heads": 32}, "embed_dim=64 but the model embed_dim=4096"),
        ({"depth": 10_000}, "depth=10000"),
        ({"mlp_ratio": 64.0}, "mis-shaped"),
    ],
)
def test_load_refuses_a_config_its_tensors_do_not_match_before_building(tmp_path, monkeypatch, claims, message):
    path = vitzoo.save(vitzoo.create("vivit_fact_sa_nano_8x2"), tmp_path / "m.safetensors")
    lying = _lying_copy(path, tmp_path, **claims)

    build = vitzoo.models.build_model

    def meta_only(cfg):  # a skeleton on the meta device allocates nothing; anything else is a real build
        if torch.empty(()).device.type != "meta":
            raise AssertionError(f"vitzoo.load built the claimed model ({cfg.embed_dim=}, {cfg.depth=}) first")
        return build(cfg)

    monkeypatch.setattr(vitzoo.models, "build_model", meta_only)
    with pytest.raises(ValueError, match=message):
        vitzoo.load(lying)


def test_load_of_a_pickle_or_garbage_names_the_file(tmp_path):
    torch.save({"x": torch.zeros(1)}, tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"m.pt is not a .safetensors file; .*pretrained"):
        vitzoo.load(tmp_path / "m.pt")
    (tmp_path / "bad.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(ValueError, match="bad.safetensors is not a readable safetensors file"):
        vitzoo.load(tmp_path / "bad.safetensors")
