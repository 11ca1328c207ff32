"""``vitzoo.convert.from_torchvision``: torchvision's Video Swin reproduced to 1e-5 (logits and every stage)."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.swin_transformer import PatchMergingV2, SwinTransformerBlockV2
from torchvision.models.video import swin3d_b, swin3d_s, swin3d_t
from torchvision.models.video.swin_transformer import SwinTransformer3d

import vitzoo
from vitzoo.checkpoints.convert_torchvision_swin import config_from_torchvision_swin, torchvision_swin_state
from vitzoo.convert import from_torchvision

TOL = 1e-5
SMALL = dict(patch_size=[2, 4, 4], embed_dim=16, depths=[2, 2, 2, 2], num_heads=[2, 2, 4, 4], window_size=[4, 7, 7])


def _perturbed(model: torch.nn.Module, scale: float = 0.05) -> torch.nn.Module:
    """Random weights away from the init (LayerNorms, biases and bias tables included), in eval mode."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale)
    return model.eval()


def _torchvision_stages(model, x):
    """torchvision's features after every stage (its ``features`` alternates stages and patch merging)."""
    out, y = [], model.patch_embed(x)
    for i, layer in enumerate(model.features):
        y = layer(y)
        if i % 2 == 0:
            out.append(y)
    return out


def _max_diffs(theirs, ours, x) -> list[float]:
    with torch.no_grad():
        logits = (theirs(x) - ours(x)).abs().max().item()
        stages = ours.forward_intermediates(x, output_fmt="NTHWC", intermediates_only=True)
        pairs = zip(_torchvision_stages(theirs, x), stages, strict=True)
        return [logits] + [(a - b).abs().max().item() for a, b in pairs]


@pytest.mark.parametrize("size", [(5, 70, 90), (3, 20, 30), (1, 8, 8), (9, 33, 17)])
def test_small_config_exact_at_any_size(size):
    """Non-multiples of the window, clipped windows in time and space, one frame, odd merges."""
    theirs = _perturbed(SwinTransformer3d(**SMALL, num_classes=5))
    ours = from_torchvision(theirs)
    assert ours.cfg.dynamic_size and ours.cfg.clipped_window_bias == "torchvision"
    assert max(_max_diffs(theirs, ours, torch.randn(1, 3, *size))) <= TOL


def test_relative_bias_of_clipped_windows_is_the_only_difference():
    """Negative control: with ``clipped_window_bias="relative"`` the converted model differs from torchvision where a
    spatial window is clipped (stage 3 at 5 x 70 x 90: 5 x 6 tokens), and nowhere else."""
    theirs = _perturbed(SwinTransformer3d(**{**SMALL, "depths": [2, 2, 2], "num_heads": [2, 2, 4]}, num_classes=5))
    ours = from_torchvision(theirs)
    ours.cfg.clipped_window_bias = "relative"
    for stage in ours.layers:
        stage.clipped_window_bias, stage._plans = "relative", type(stage._plans)()
    clipped = _max_diffs(theirs, ours, torch.randn(1, 3, 5, 70, 90))  # logits, stages 1-3
    assert max(clipped[1:3]) <= TOL and clipped[3] > 1e-3 and clipped[0] > 10 * TOL
    assert max(_max_diffs(theirs, ours, torch.randn(1, 3, 4, 112, 112))) <= TOL  # time clipped only: the same


def test_training_mode_gradients_match():
    theirs = _perturbed(SwinTransformer3d(**SMALL, num_classes=5, stochastic_depth_prob=0.0)).train()
    ours = from_torchvision(theirs)
    assert ours.training
    x = torch.randn(2, 3, 5, 40, 44)
    theirs(x).square().sum().backward()
    ours(x).square().sum().backward()
    expected = torchvision_swin_state({k: p.grad for k, p in theirs.named_parameters()}, image=False)
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("builder", [swin3d_t, swin3d_s, swin3d_b])
def test_default_configs_are_the_registered_models(builder):
    with torch.device("meta"):
        cfg = config_from_torchvision_swin(builder(), dynamic_size=False)
    name = {"swin3d_t": "video_swin_tiny_4x2", "swin3d_s": "video_swin_small_4x2", "swin3d_b": "video_swin_base_4x2"}
    assert cfg == vitzoo.model_config(name[builder.__name__], clipped_window_bias="torchvision")


@pytest.mark.slow
@pytest.mark.parametrize("builder", [swin3d_t, swin3d_s, swin3d_b])
@pytest.mark.parametrize("size", [(16, 224, 224), (5, 70, 90)])
def test_default_configs_exact(builder, size):
    """weights=None (offline), perturbed by the init's own scale: logits and every stage within 1e-5."""
    theirs = _perturbed(builder(), scale=0.02)
    assert max(_max_diffs(theirs, from_torchvision(theirs), torch.randn(1, 3, *size))) <= TOL


def test_torchvision_weight_file_loads_through_create(tmp_path):
    """A bare torchvision state dict (a downloaded ``swin3d_*.pth``) goes through ``pretrained=``."""
    theirs = _perturbed(SwinTransformer3d([2, 4, 4], 32, [2, 2], [2, 4], [2, 4, 4], num_classes=7))
    torch.save(theirs.state_dict(), tmp_path / "swin3d.pth")
    ours = vitzoo.create(
        "video_swin_nano_4x2", pretrained=tmp_path / "swin3d.pth", num_classes=7, clipped_window_bias="torchvision"
    ).eval()
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=TOL)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (dict(block=SwinTransformerBlockV2), "SwinTransformerBlockV2"),
        (dict(downsample_layer=PatchMergingV2), "PatchMergingV2"),
    ],
)
def test_unsupported_options_raise_naming_them(options, named):
    theirs = SwinTransformer3d(**SMALL, **options)
    with pytest.raises(NotImplementedError, match=named):
        from_torchvision(theirs)


def test_other_torchvision_classes_raise():
    with pytest.raises(TypeError, match="SwinTransformer3d"):
        from_torchvision(torch.nn.Linear(2, 2))
