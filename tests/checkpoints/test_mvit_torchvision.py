"""vitzoo.convert.from_torchvision for torchvision's MViT: exact logits and stage features, options that raise.

Fast: small non-default configurations built through torchvision's ``MViT`` class with random weights (fp32,
<= 1e-5), among them every block of the MViTv1-B / MViTv2-S layouts at a quarter of the width, 4 frames x 64 px.
Slow: the full-width layouts (fp32, and every block in float64 to 1e-10), and torchvision's ``mvit_v1_b`` /
``mvit_v2_s`` at their default 16 x 224.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import vitzoo
from vitzoo.checkpoints.convert_torchvision_mvit import build_torchvision_mvit, config_from_torchvision
from vitzoo.convert import from_torchvision

TOL = 1e-5


def _random_torchvision(cfg, scale: float) -> nn.Module:
    """torchvision's MViT at ``cfg`` with random weights everywhere (tables, norms and biases too): built on the
    meta device and filled, which is much faster than torchvision's initialisation at full width."""
    with torch.device("meta"):
        tv = build_torchvision_mvit(cfg)
    tv.to_empty(device="cpu")
    with torch.no_grad():
        for p in tv.parameters():
            p.normal_(std=scale)
        for m in tv.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.add_(1.0)
    return tv.eval()


def _stage_outputs(tv: nn.Module, cfg, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """torchvision's logits and the grid tokens (class token dropped) after each stage's last block."""
    ends = {sum(cfg.depths[: s + 1]) - 1 for s in range(len(cfg.depths))}
    outs: list[torch.Tensor] = []
    hooks = [tv.blocks[i].register_forward_hook(lambda m, a, o: outs.append(o[0][:, 1:])) for i in sorted(ends)]
    try:
        with torch.no_grad():
            logits = tv(x)
    finally:
        for h in hooks:
            h.remove()
    return logits, outs


def _max_diffs(tv: nn.Module, x: torch.Tensor) -> tuple[float, list[float]]:
    ours = from_torchvision(tv)
    logits, stages = _stage_outputs(tv, ours.cfg, x)
    with torch.no_grad():
        got, maps = ours.forward_intermediates(x, output_fmt="NLC")
        got = ours.forward_head(got)
    assert [m.shape for m in maps] == [s.shape for s in stages]
    return float((got - logits).abs().max()), [float((m - s).abs().max()) for m, s in zip(maps, stages, strict=True)]


SMALL = {
    "v2-nano": ("mvitv2_nano_4x2", {}),
    "v1-nano": ("mvitv1_nano_4x2", {}),
    "v2-nonsquare": ("mvitv2_nano_4x2", dict(img_size=(32, 64))),
    "v2-residual-with-cls": ("mvitv2_nano_4x2", dict(residual_with_cls=True)),
    "v2-8frames-dropouts": ("mvitv2_nano_4x2", dict(num_frames=8, proj_drop_rate=0.1, drop_path_rate=0.3)),
    # the published four-stage layouts (every block, strides and kernels) at a quarter of the width, 4 x 64
    "v2-S-layout-narrow-4x64": ("mvitv2_small_16x4", dict(num_frames=4, img_size=64, widths=(24, 48, 96, 192))),
    "v1-B-layout-narrow-4x64": ("mvitv1_base_16x4", dict(num_frames=4, img_size=64, widths=(24, 48, 96, 192))),
}
FULL_WIDTH = {  # slow: full-width layouts, depth cut so that fp32 rounding stays under 1e-5 (see below)
    "v2-S-layout-4x64": ("mvitv2_small_16x4", dict(num_frames=4, img_size=64, depths=(1, 2, 3, 1))),
    "v1-B-layout-4x64": ("mvitv1_base_16x4", dict(num_frames=4, img_size=64, depths=(1, 2, 3, 2))),
}


def _check_fp32(name: str, over: dict) -> None:
    cfg = vitzoo.model_config(name, **over)
    tv = _random_torchvision(cfg, 0.02)
    assert config_from_torchvision(tv) == vitzoo.model_config(name, mean=(0.45,) * 3, std=(0.225,) * 3, **over)
    logits, stages = _max_diffs(tv, torch.randn(2, 3, cfg.num_frames, *cfg.img_hw))
    assert logits <= TOL and max(stages) <= TOL, (logits, stages)


@pytest.mark.parametrize("case", SMALL)
def test_small_configs_match_torchvision(case):
    _check_fp32(*SMALL[case])


@pytest.mark.slow
@pytest.mark.parametrize("case", FULL_WIDTH)
def test_full_width_configs_match_torchvision(case):
    _check_fp32(*FULL_WIDTH[case])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mvitv2_small_16x4", "mvitv1_base_16x4"])
def test_full_depth_layouts_match_torchvision_in_float64(name):
    """Every block of the published layouts at full width, strongly perturbed: equal to rounding. (In fp32 the
    features of the 11-block third stage drift apart by ~1e-6 relative per block, about 1.5e-5 absolute at values
    near 10: the full-width fp32 cases cut that stage to 3 blocks.)"""
    cfg = vitzoo.model_config(name, num_frames=4, img_size=64)
    tv = _random_torchvision(cfg, 0.1).double()
    logits, stages = _max_diffs(tv, torch.randn(1, 3, 4, 64, 64, dtype=torch.float64))
    assert logits <= 1e-10 and max(stages) <= 1e-10, (logits, stages)


@pytest.mark.slow
@pytest.mark.parametrize("builder", ["mvit_v1_b", "mvit_v2_s"])
def test_default_torchvision_models_match(builder):
    """torchvision's own builders at their default 16 x 224 (weights=None: offline), fp32."""
    from torchvision.models import video

    tv = getattr(video, builder)(weights=None).eval()
    logits, stages = _max_diffs(tv, torch.randn(1, 3, 16, 224, 224))
    assert logits <= TOL and max(stages) <= TOL, (logits, stages)


def test_published_builders_give_the_registered_configs():
    from torchvision.models.video import mvit_v1_b, mvit_v2_s

    with torch.device("meta"):
        found = [config_from_torchvision(mvit_v1_b()), config_from_torchvision(mvit_v2_s())]
    assert found == [vitzoo.model_config("mvitv1_base_16x4"), vitzoo.model_config("mvitv2_small_16x4")]


def _tv_class(**kwargs) -> nn.Module:
    """torchvision's MViT class around the nano layout, with ``kwargs`` replaced."""
    from torchvision.models.video.mvit import MViT

    tv = build_torchvision_mvit(vitzoo.model_config("mvitv2_nano_4x2"))
    setting = [_setting(b) for b in tv.blocks]  # the block records torchvision was built from
    args = dict(spatial_size=(32, 32), temporal_size=4, block_setting=setting, residual_pool=True,
                residual_with_cls_embed=False, rel_pos_embed=True, proj_after_attn=True, num_classes=10)  # fmt: skip
    return MViT(**{**args, **kwargs})


def _setting(block):
    from torchvision.models.video.mvit import MSBlockConfig

    attn = block.attn
    return MSBlockConfig(
        num_heads=attn.num_heads,
        input_channels=block.norm1.normalized_shape[0],
        output_channels=block.mlp[3].out_features,
        kernel_q=list(attn.pool_q.pool.kernel_size),
        kernel_kv=list(attn.pool_k.pool.kernel_size),
        stride_q=list(attn.pool_q.pool.stride),
        stride_kv=list(attn.pool_k.pool.stride),
    )


def test_unsupported_torchvision_options_raise_naming_them():
    from torchvision.models.video.mvit import MultiscaleBlock

    class MyBlock(MultiscaleBlock):
        pass

    with pytest.raises(NotImplementedError, match="block=MyBlock"):
        from_torchvision(_tv_class(block=MyBlock))
    with pytest.raises(NotImplementedError, match="norm_layer=BatchNorm1d"):
        from_torchvision(_tv_class(norm_layer=nn.BatchNorm1d))
    setting = [_setting(b) for b in _tv_class().blocks]
    setting[1].stride_q = [1, 1, 1]  # width and heads change without a query stride: not a stage boundary
    with pytest.raises(NotImplementedError, match="not a stage-wise layout"):
        from_torchvision(_tv_class(block_setting=setting))


def test_other_torchvision_classes_and_vitzoo_only_options_are_refused():
    from torchvision.models.video import r3d_18

    with pytest.raises(TypeError, match="no vitzoo converter for torchvision.models.video.resnet.VideoResNet"):
        from_torchvision(r3d_18())
    with pytest.raises(ValueError, match="class_token"):
        build_torchvision_mvit(vitzoo.model_config("mvitv2_nano_4x2", class_token=False, global_pool="avg"))
