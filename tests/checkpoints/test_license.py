"""``pretrained_cfg["license"]``: known where the weights say it (timm's pretrained_cfg, vitzoo metadata, the
project's shipped files), kept through ``vitzoo.save`` / ``save_pretrained``, absent where nobody said it."""

from __future__ import annotations

import timm

import vitzoo
from vitzoo.checkpoints.io import LICENSE_KEY, read_metadata


def test_from_timm_keeps_the_license_and_hub_id_and_save_load_keeps_the_license(tmp_path):
    reference = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=1)
    model = vitzoo.convert.from_timm(reference)
    assert model.pretrained_cfg["license"] == reference.pretrained_cfg["license"] == "apache-2.0"
    assert model.pretrained_cfg["hf_hub_id"] == reference.pretrained_cfg["hf_hub_id"]
    path = vitzoo.save(model, tmp_path / "vit.safetensors")
    assert read_metadata(path)[LICENSE_KEY] == "apache-2.0"
    assert vitzoo.load(path).pretrained_cfg["license"] == "apache-2.0"
    again = vitzoo.create("vit_tiny_patch16_224", img_size=32, depth=1, pretrained=path)
    assert again.pretrained_cfg["license"] == "apache-2.0"
    folder = vitzoo.save_pretrained(model, tmp_path / "folder")
    assert "license: apache-2.0" in (folder / "README.md").read_text()
    assert vitzoo.load(folder).pretrained_cfg["license"] == "apache-2.0"


def test_shipped_weights_carry_the_project_license_and_unknown_weights_none(tmp_path):
    model = vitzoo.create("vit_micro_patch4_32", pretrained="vit_micro_patch4_32_shapes", num_classes=16)
    assert model.pretrained_cfg["license"] == "Apache-2.0"
    fresh = vitzoo.create("vit_micro_patch4_32")
    assert "license" not in fresh.pretrained_cfg
    path = vitzoo.save(fresh, tmp_path / "fresh.safetensors")
    assert LICENSE_KEY not in read_metadata(path) and "license" not in vitzoo.load(path).pretrained_cfg
