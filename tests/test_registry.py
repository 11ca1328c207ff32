"""Registry behaviour and registry-wide checks: every model builds, runs forward/backward, round-trips."""

from __future__ import annotations

import pytest
import torch

import vitzoo
from tests.helpers.zoo import random_input, tiny_input_overrides
from vitzoo.registry import MODELS, Registry


def test_list_models_sorted_and_glob():
    names = vitzoo.list_models()
    assert names == sorted(names) and len(names) == len(set(names))
    assert "vit_base_patch16_224" in names
    assert all(n.startswith("vivit_") for n in vitzoo.list_models("vivit_*"))
    assert vitzoo.list_models("nothing_matches_*") == []


def test_bare_vivit_names_are_base_16x2_aliases():
    for enc in ("joint", "fact_enc", "fact_sa", "fact_dot"):
        cfg = vitzoo.model_config(f"vivit_{enc}")
        assert (cfg.embed_dim, cfg.depth, cfg.num_frames, cfg.img_size, cfg.tubelet_size) == (768, 12, 32, 224, 2)
        assert cfg.encoder == enc
    assert "vivit_fact_enc" in vitzoo.list_models("vivit_*", include_aliases=True)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(KeyError, match="vit_base_patch16_224"):
        vitzoo.create("vit_base_patch16_244")


def test_unknown_kwarg_raises_with_suggestion():
    with pytest.raises(TypeError, match="num_classes"):
        vitzoo.create("vit_nano_patch8_32", num_clases=3)


def test_invalid_config_value_raises():
    with pytest.raises(ValueError, match="divisible"):
        vitzoo.create("vit_nano_patch8_32", img_size=36)


def test_duplicate_registration_raises():
    reg = Registry("thing")
    reg.add("a", 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("a", 2)
    with pytest.raises(ValueError, match="already registered"):
        reg.alias("a", "a")


@pytest.mark.parametrize("name", vitzoo.list_models())
def test_every_model_forward_backward_roundtrip(name, tmp_path):
    model = vitzoo.create(name, **tiny_input_overrides(name))
    x = random_input(model)
    out = model(x)
    assert out.shape == (2, 3)
    out.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    model.eval()
    path = vitzoo.save(model, tmp_path / "m.safetensors")
    again = vitzoo.load(path)
    assert type(again) is type(model) and again.cfg == model.cfg and again.arch_name == MODELS.resolve(name)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", vitzoo.list_models())
def test_every_model_full_size_builds_on_meta(name):
    """The full-size registered architecture is consistent (built without allocating memory)."""
    with torch.device("meta"):
        model = vitzoo.create(name)
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", vitzoo.list_models())
def test_every_model_compiles_at_a_tiny_input(name):
    model = vitzoo.create(name, **tiny_input_overrides(name)).eval()
    x = random_input(model)
    compiled = torch.compile(model)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)
