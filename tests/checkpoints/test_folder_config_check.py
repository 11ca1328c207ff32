"""A vitzoo folder's ``config.json`` is checked against the config its ``model.safetensors`` records (issue 25,
item 2): a hand-edited field that keeps every tensor shape (``num_heads``, ``norm_eps``, ...) would otherwise load
silently and compute something else."""

from __future__ import annotations

import json

import pytest
import torch

import vitzoo
from tests.helpers.hub_sources import perturbed


@pytest.fixture
def folder(tmp_path):
    vit = perturbed(vitzoo.create("vit_nano_patch8_32", num_classes=3))
    return vitzoo.save_pretrained(vit, tmp_path / "vit", labels=["a", "b", "c"], card=False)


def _edit(folder, change):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("field", "value"),
    [("num_heads", None), ("norm_eps", 1e-5), pytest.param("act", "gelu_tanh", marks=pytest.mark.slow),
     pytest.param("qk_norm", True, marks=pytest.mark.slow), pytest.param("global_pool", "avg", marks=pytest.mark.slow)],
)  # fmt: skip
def test_edited_config_json_is_refused_naming_the_field_and_both_values(folder, field, value):
    recorded = vitzoo.load(folder).cfg
    old = getattr(recorded, field)
    new = recorded.num_heads * 2 if field == "num_heads" else value
    _edit(folder, lambda c: c["model_config"]["fields"].__setitem__(field, new))
    with pytest.raises(ValueError) as err:
        vitzoo.load(folder)
    message = str(err.value)
    assert f"{field}={new!r} vs {old!r}" in message and "config.json" in message and "\n" not in message, message
    with pytest.raises(ValueError, match=field):
        vitzoo.create("vit_nano_patch8_32", pretrained=folder)


@pytest.mark.slow
def test_the_edit_would_have_changed_the_network(folder):
    """The negative control: the edited config builds a model that loads these tensors and computes otherwise."""
    good = vitzoo.load(folder)
    edited = vitzoo.models.build_model(vitzoo.config.replace(good.cfg, num_heads=good.cfg.num_heads * 2))
    edited.load_state_dict(good.state_dict())
    x = torch.randn(1, *good.input_shape)
    with torch.no_grad():
        assert (edited.eval()(x) - good(x)).abs().max() > 1e-4


def test_unknown_or_other_architecture_is_refused(folder):
    _edit(folder, lambda c: c.__setitem__("architecture", "vit_nano_patch8_33"))
    with pytest.raises(ValueError, match="architecture 'vit_nano_patch8_33', which vitzoo does not have.*did you mean"):
        vitzoo.load(folder)
    _edit(folder, lambda c: c.__setitem__("architecture", "vit_tiny_patch16_224"))
    with pytest.raises(ValueError, match="architecture='vit_tiny_patch16_224' vs 'vit_nano_patch8_32'"):
        vitzoo.load(folder)


def test_edited_labels_are_refused(folder):
    _edit(folder, lambda c: c.__setitem__("labels", ["a", "c", "b"]))
    with pytest.raises(ValueError, match=r"labels=\['a', 'c', 'b'\] vs \['a', 'b', 'c'\]"):
        vitzoo.load(folder)


def test_untouched_folder_loads(folder):
    model = vitzoo.load(folder)
    assert model.arch_name == "vit_nano_patch8_32" and model.cfg.num_classes == 3


def test_timm_folder_naming_an_architecture_timm_lacks_is_refused(tmp_path):
    from tests.helpers.hub_sources import timm_folder

    _, folder = timm_folder(tmp_path, "vit_tiny_patch16_224", num_classes=3)
    _edit(folder, lambda c: c.__setitem__("architecture", "vit_tinyy_patch16_224"))
    with pytest.raises(ValueError, match="timm architecture 'vit_tinyy_patch16_224', which timm .* does not have"):
        vitzoo.load(folder)
