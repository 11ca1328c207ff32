"""The MViT family: stage layouts, multi-scale taps, sizes, published FLOPs and parameter counts, config errors."""

from __future__ import annotations

import pytest
import torch

import vitzoo
from vitzoo.bench import model_flops
from vitzoo.checkpoints.convert_torchvision_mvit import build_torchvision_mvit
from vitzoo.models.mvit_config import block_specs
from vitzoo.schema import ConfigError


def test_mvitv2_small_taps_every_stage_at_16x224():
    with torch.device("meta"):  # shapes only: nothing is allocated or computed
        model = vitzoo.create("mvitv2_small_16x4").eval()
        maps = model.forward_intermediates(torch.empty(2, 3, 16, 224, 224), intermediates_only=True)
        last = model.forward_intermediates(torch.empty(2, 3, 16, 224, 224), indices=1, output_fmt="NTHWC",
                                           norm=True, return_prefix_tokens=True, intermediates_only=True)  # fmt: skip
    assert [tuple(m.shape) for m in maps] == [
        (2, 96, 8, 56, 56), (2, 192, 8, 28, 28), (2, 384, 8, 14, 14), (2, 768, 8, 7, 7),
    ]  # fmt: skip
    ((fmap, cls),) = last
    assert tuple(fmap.shape) == (2, 8, 7, 7, 768) and tuple(cls.shape) == (2, 1, 768)


def test_stop_early_returns_the_stage_reached():
    model = vitzoo.create("mvitv2_nano_4x2").eval()
    x = torch.randn(2, *model.input_shape)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x, indices=[0], stop_early=True, output_fmt="NLC")
        full = model.forward_intermediates(x, output_fmt="NLC", intermediates_only=True)
    torch.testing.assert_close(maps[0], full[0], rtol=0, atol=0)
    assert final.shape == (2, 1 + 2 * 8 * 8, 32)  # the first stage's tokens, not normalised


def test_v1_and_v2_place_growth_and_query_pooling_as_torchvision():
    v1 = block_specs(vitzoo.model_config("mvitv1_base_16x4"))
    v2 = block_specs(vitzoo.model_config("mvitv2_small_16x4"))
    assert [(b.dim, b.dim_out) for b in v1[:4]] == [(96, 192), (192, 192), (192, 384), (384, 384)]  # in the MLP
    assert [(b.dim, b.dim_out) for b in v2[:4]] == [(96, 96), (96, 192), (192, 192), (192, 384)]  # in attention
    assert [b.kernel_q for b in v1[:3]] == [(1, 1, 1), (3, 3, 3), (1, 1, 1)]  # v1: only strided blocks pool q
    assert all(b.kernel_q == (3, 3, 3) for b in v2)
    assert [b.num_heads for b in v2] == [1, 2, 2, 4, *[4] * 10, 8, 8]


@pytest.mark.parametrize(
    ("name", "gmacs", "params", "rel"),
    [
        ("mvitv1_base_16x4", 70.599, 36_610_672, 1e-5),  # torchvision's _ops / num_params (MViT paper: 70.5, 36.6M)
        ("mvitv2_small_16x4", 64.224, 34_537_744, 1e-5),  # torchvision (MViTv2 paper: 64, 34.5M)
        ("mvitv2_base_32x3", 225.0, 51_200_000, 5e-3),  # MViTv2 paper, Table 5: 225 G, 51.2M
    ],
)
def test_flops_and_parameters_match_published_figures(name, gmacs, params, rel):
    """The published figures count multiply-adds (fvcore); vitzoo counts a multiply and an add: twice as many."""
    cfg = vitzoo.model_config(name)
    assert model_flops(cfg).total == pytest.approx(2 * gmacs * 1e9, rel=rel)
    with torch.device("meta"):
        count = sum(p.numel() for p in vitzoo.create(name).parameters())
    assert count == pytest.approx(params, rel=1e-3 if rel > 1e-5 else 0)


@pytest.mark.parametrize("name", ["mvitv1_nano_4x2", "mvitv2_nano_4x2"])
def test_resampled_tables_have_the_shapes_torchvision_builds_at_that_size(name):
    model = vitzoo.create(name)
    model.resample(num_frames=8, img_size=(64, 96))
    with torch.device("meta"):
        tv = build_torchvision_mvit(model.cfg)
    from vitzoo.checkpoints.convert_torchvision_mvit import state_from_torchvision

    expected = {k: tuple(v.shape) for k, v in state_from_torchvision(tv.state_dict(), model.cfg).items()}
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == expected
    assert model(torch.randn(1, 3, 8, 64, 96)).shape == (1, 10)


def test_other_sizes_need_dynamic_size_and_multiples_of_the_stem_stride():
    model = vitzoo.create("mvitv2_nano_4x2")
    with pytest.raises(ValueError, match="dynamic_size=True"):
        model(torch.randn(1, 3, 4, 64, 64))
    dynamic = vitzoo.create("mvitv2_nano_4x2", dynamic_size=True)
    assert dynamic(torch.randn(1, 3, 6, 48, 64)).shape == (1, 10)
    with pytest.raises(ValueError, match=r"multiples of \(2, 4, 4\)"):
        dynamic(torch.randn(1, 3, 5, 48, 64))


def test_grad_checkpointing_gives_the_same_gradients():
    model = vitzoo.create("mvitv2_nano_4x2", drop_path_rate=0.0)
    x = torch.randn(2, *model.input_shape)
    model(x).sum().backward()
    plain = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.set_grad_checkpointing(True)
    model(x).sum().backward()
    for a, p in zip(plain, model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(widths=(32, 63)), "divisible by num_heads"),
        (dict(depths=(1, 1, 1)), "one entry per stage"),
        (dict(num_frames=3), "multiples of patch_stride"),
        (dict(class_token=False), "global_pool='token' needs class_token"),
    ],
)
def test_bad_configs_say_what_is_wrong(overrides, message):
    with pytest.raises(ConfigError, match=message):
        vitzoo.model_config("mvitv2_nano_4x2", **overrides)
