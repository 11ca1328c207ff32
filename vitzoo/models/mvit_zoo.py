"""Registered Multiscale Vision Transformers (video).

Names are ``mvitv{1,2}_{size}_{frames}x{rate}``: the clip the model takes (``frames`` frames, every ``rate``-th
frame of the video, as the papers name their Kinetics models). Where each layout comes from:

==========================  =======================  ===========================================================
vitzoo                      torchvision              source of the layout
==========================  =======================  ===========================================================
``mvitv1_base_16x4``        ``mvit_v1_b``            MViT paper, MViT-B 16x4 (SlowFast ``MVIT_B_16x4_CONV``)
``mvitv2_small_16x4``       ``mvit_v2_s``            MViTv2 paper, MViTv2-S (SlowFast ``MVITv2_S_16x4.yaml``)
``mvitv2_base_32x3``        (none)                   SlowFast ``configs/Kinetics/MVITv2_B_32x3.yaml``: depth 24,
                                                     stages start at blocks 2, 5, 21 (depths 2-3-16-3), 32
                                                     frames, the same stem, kernels and adaptive strides as
                                                     MViTv2-S, stochastic depth 0.3
``mvitv2_micro_8x2``        (none)                   vitzoo's CPU demo: 3 stages, widths 32-64-128, 8 frames
                                                     of 32 px (the demo samples every 2nd frame)
``mvitv{1,2}_nano_4x2``     (none)                   vitzoo's unit tests: 2 stages, 4 frames of 32 px
==========================  =======================  ===========================================================

The full-size models carry torchvision's Kinetics-400 head (400 classes), normalisation (mean 0.45, std 0.225)
and defaults (head dropout 0.5, stochastic depth 0.2); ``vitzoo.convert.from_torchvision(mvit_v2_s(weights=...))``
gives the same network with torchvision's weights.

The benchmark reference ``torchvision_mvit`` is torchvision's ``MViT`` class built at exactly the vitzoo config
(every block's ``MSBlockConfig`` from :func:`~vitzoo.models.mvit_config.block_specs`).
"""

from __future__ import annotations

from functools import partial

from torch import nn

from vitzoo.models.mvit_config import MViTConfig, block_specs
from vitzoo.models.reference import Reference
from vitzoo.registry import MODELS, REFERENCES

KINETICS = dict(num_classes=400, mean=(0.45, 0.45, 0.45), std=(0.225, 0.225, 0.225), drop_rate=0.5)
# MViTv1: absolute separable positions, growth in the MLP of a stage's last block, queries pooled only where strided.
V1 = dict(rel_pos=False, residual_pool=False, expand_in_attention=False, pool_q_every_block=False)
V2 = dict(rel_pos=True, residual_pool=True, expand_in_attention=True, pool_q_every_block=True)
FOUR_STAGES = dict(
    widths=(96, 192, 384, 768),
    num_heads=(1, 2, 4, 8),
    q_strides=((1, 1, 1), (1, 2, 2), (1, 2, 2), (1, 2, 2)),
    kv_strides=((1, 8, 8), (1, 4, 4), (1, 2, 2), (1, 1, 1)),
)
SMALL = dict(
    img_size=32,
    num_classes=10,
    widths=(32, 64),
    num_heads=(1, 2),
    q_strides=((1, 1, 1), (1, 2, 2)),
    kv_strides=((1, 4, 4), (1, 2, 2)),
)

CONFIGS = {
    "mvitv1_base_16x4": dict(**V1, **KINETICS, **FOUR_STAGES, depths=(1, 2, 11, 2), num_frames=16, drop_path_rate=0.2),
    "mvitv2_small_16x4": dict(**V2, **KINETICS, **FOUR_STAGES, depths=(1, 2, 11, 2), num_frames=16, drop_path_rate=0.2),
    "mvitv2_base_32x3": dict(**V2, **KINETICS, **FOUR_STAGES, depths=(2, 3, 16, 3), num_frames=32, drop_path_rate=0.3),
    "mvitv2_micro_8x2": {
        **V2,
        **SMALL,
        "widths": (32, 64, 128),
        "num_heads": (1, 2, 4),
        "q_strides": ((1, 1, 1), (1, 2, 2), (1, 2, 2)),
        "kv_strides": ((1, 4, 4), (1, 2, 2), (1, 1, 1)),
        "depths": (1, 2, 2),
        "num_frames": 8,
    },
    "mvitv1_nano_4x2": dict(**V1, **SMALL, depths=(1, 1), num_frames=4),
    "mvitv2_nano_4x2": dict(**V2, **SMALL, depths=(1, 1), num_frames=4),
}


def _config(fields: dict) -> MViTConfig:
    return MViTConfig(**fields)


for _name, _fields in CONFIGS.items():
    MODELS.add(_name, partial(_config, _fields))


# ------------------------------------------------------------------------------------------- benchmark reference
def build_torchvision_mvit(cfg: MViTConfig) -> nn.Module:
    """torchvision's ``MViT`` with exactly ``cfg``'s architecture (one ``MSBlockConfig`` per block).

    Raises ``ValueError`` for options torchvision does not have (no class token, mean pooling, ...).
    """
    from torchvision.models.video.mvit import MSBlockConfig
    from torchvision.models.video.mvit import MViT as TorchvisionMViT

    fixed = dict(class_token=True, global_pool="token", qkv_bias=True, mlp_ratio=4.0, norm_eps=1e-6, in_chans=3,
                 attn_drop_rate=0.0)  # fmt: skip
    wrong = {k: getattr(cfg, k) for k, v in fixed.items() if getattr(cfg, k) != v}
    if wrong or cfg.num_classes < 1:
        raise ValueError(f"torchvision's MViT cannot represent {wrong or {'num_classes': 0}}; it has {fixed}")
    setting = [
        MSBlockConfig(
            num_heads=s.num_heads,
            input_channels=s.dim,
            output_channels=s.dim_out,
            kernel_q=list(s.kernel_q),
            kernel_kv=list(s.kernel_kv),
            stride_q=list(s.stride_q),
            stride_kv=list(s.stride_kv),
        )
        for s in block_specs(cfg)
    ]
    return TorchvisionMViT(
        spatial_size=cfg.img_hw,
        temporal_size=cfg.num_frames,
        block_setting=setting,
        residual_pool=cfg.residual_pool,
        residual_with_cls_embed=cfg.residual_with_cls,
        rel_pos_embed=cfg.rel_pos,
        proj_after_attn=cfg.expand_in_attention,
        dropout=cfg.drop_rate,
        attention_dropout=cfg.proj_drop_rate,
        stochastic_depth_prob=cfg.drop_path_rate,
        num_classes=cfg.num_classes,
        patch_embed_kernel=cfg.patch_kernel,
        patch_embed_stride=cfg.patch_stride,
        patch_embed_padding=cfg.patch_padding,
    )


build_torchvision = build_torchvision_mvit  # its name here before it moved from vitzoo.checkpoints


REFERENCES.add(
    "torchvision_mvit",
    Reference("torchvision_mvit", "torchvision MViT", build_torchvision_mvit, architectures=("mvit",)),
)
