"""Registered Swin Transformers: video (Liu et al., 2022) and one-frame image models (Liu et al., 2021).

Video Swin, ``video_swin_{size}_{patch}x{tubelet}`` (ViViT's ``{patch}x{tubelet}`` convention), clips of 32 frames
at 224 px (the paper's; set ``num_frames`` for others), 400 classes (Kinetics-400):

=========================  ==========================  ======  ==============  ============  ======
vitzoo                     torchvision                 widths  depths          heads         window
=========================  ==========================  ======  ==============  ============  ======
``video_swin_tiny_4x2``    ``swin3d_t``  (Swin-T)      96..    2, 2, 6, 2      3, 6, 12, 24  8x7x7
``video_swin_small_4x2``   ``swin3d_s``  (Swin-S)      96..    2, 2, 18, 2     3, 6, 12, 24  8x7x7
``video_swin_base_4x2``    ``swin3d_b``  (Swin-B)      128..   2, 2, 18, 2     4, 8, 16, 32  8x7x7
``video_swin_micro_4x2``   (CPU demo, 8 x 32 px)       32..    2, 2, 2         2, 4, 8       2x4x4
``video_swin_nano_4x2``    (unit tests, 8 x 32 px)     32, 64  2, 2            2, 4          2x4x4
=========================  ==========================  ======  ==============  ============  ======

Widths double at every stage. ``vitzoo.convert.from_torchvision(swin3d_t())`` gives ``video_swin_tiny_4x2``'s
architecture with ``clipped_window_bias="torchvision"`` (torchvision's bias for windows clipped to small inputs).

Image Swin, timm's names ``swin_{size}_patch4_window{w}_{img}`` (torchvision ``swin_t/s/b`` for tiny/small/base, with
their stochastic depth 0.2 / 0.3 / 0.5 and 1000 classes): the same family with one frame, ``tubelet_size=1`` and a
``1 x w x w`` window (:class:`~vitzoo.models.swin_config.ImageSwinConfig`); they take images ``(B, C, H, W)`` and
``forward_features`` returns timm's ``NHWC`` map. ``swin_micro_patch4_window4_32`` is the demo's image model
(pre-trained on shapes, inflated into ``video_swin_micro_4x2``); ``swin_nano_patch4_window4_32`` is for tests.
"""

from __future__ import annotations

from functools import partial

from torch import nn

from vitzoo.models.reference import Reference, require
from vitzoo.models.swin_config import ImageSwinConfig, SwinConfig
from vitzoo.registry import MODELS, REFERENCES

# size -> stage layout (the torchvision / paper layouts, plus CPU-sized micro and nano)
LAYOUTS = {
    "nano": dict(widths=(32, 64), depths=(2, 2), num_heads=(2, 4), drop_path_rate=0.0),
    "micro": dict(widths=(32, 64, 128), depths=(2, 2, 2), num_heads=(2, 4, 8), drop_path_rate=0.0),
    "tiny": dict(widths=(96, 192, 384, 768), depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    "small": dict(widths=(96, 192, 384, 768), depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    "base": dict(widths=(128, 256, 512, 1024), depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
}
# size -> (frames, image size, window): video models
VIDEO_GEOMETRY = {
    "nano": (8, 32, (2, 4, 4)),
    "micro": (8, 32, (2, 4, 4)),
    "tiny": (32, 224, (8, 7, 7)),
    "small": (32, 224, (8, 7, 7)),
    "base": (32, 224, (8, 7, 7)),
}
# size -> (image size, spatial window, stochastic depth): one-frame image models
IMAGE_GEOMETRY = {"nano": (32, 4, 0.0), "micro": (32, 4, 0.0), "tiny": (224, 7, 0.2), "small": (224, 7, 0.3),
                  "base": (224, 7, 0.5)}  # fmt: skip


def _swin(size: str, **fields) -> SwinConfig:
    return SwinConfig(**{**LAYOUTS[size], **fields})


def _image_swin(size: str, **fields) -> ImageSwinConfig:
    return ImageSwinConfig(**{**LAYOUTS[size], **fields})


for _size, (_frames, _img, _window) in VIDEO_GEOMETRY.items():
    MODELS.add(
        f"video_swin_{_size}_4x2",
        partial(_swin, _size, num_frames=_frames, img_size=_img, window_size=_window, patch_size=4, tubelet_size=2),
    )

for _size, (_img, _w, _dpr) in IMAGE_GEOMETRY.items():
    MODELS.add(
        f"swin_{_size}_patch4_window{_w}_{_img}",
        partial(_image_swin, _size, patch_size=4, img_size=_img, window_size=(1, _w, _w), drop_path_rate=_dpr),
    )


# ------------------------------------------------------------------------------------------- benchmark reference
def build_torchvision_swin3d(cfg: SwinConfig) -> nn.Module:
    """torchvision's ``SwinTransformer3d`` with the same hyper-parameters (what ``swin3d_t/s/b`` build)."""
    from torchvision.models.video.swin_transformer import SwinTransformer3d

    name = "torchvision SwinTransformer3d"
    require(cfg, name, clipped_window_bias="torchvision", qkv_bias=True, patch_norm=True, act="gelu", norm_eps=1e-5)
    doubling = tuple(cfg.embed_dim * 2**i for i in range(cfg.num_stages))
    if cfg.widths != doubling:
        raise ValueError(f"{name} doubles the width at every stage ({doubling}); got widths={cfg.widths}")
    return SwinTransformer3d(
        patch_size=[cfg.tubelet_size, cfg.patch_size, cfg.patch_size],
        embed_dim=cfg.embed_dim,
        depths=list(cfg.depths),
        num_heads=list(cfg.num_heads),
        window_size=list(cfg.window_size),
        mlp_ratio=cfg.mlp_ratio,
        dropout=cfg.proj_drop_rate,
        attention_dropout=cfg.attn_drop_rate,
        stochastic_depth_prob=cfg.drop_path_rate,
        num_classes=cfg.num_classes,
    )


REFERENCES.add(
    "torchvision_swin3d",
    Reference(
        "torchvision_swin3d",
        "torchvision SwinTransformer3d",
        build_torchvision_swin3d,
        architectures=("video_swin",),
        overrides={"clipped_window_bias": "torchvision"},
    ),
)
