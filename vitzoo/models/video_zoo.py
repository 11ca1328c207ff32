"""Registered video models.

ViViT (Arnab et al., 2021): ``vivit_{encoder}_{size}_{patch}x{tubelet}``, 32 frames at 224 px for
tiny..large (the paper's setting); 4 frames at 32 px for the CPU-test ``nano``, and 8 frames at
32 px with 4x4 patches for the CPU demo's ``micro``. The bare names
(``vivit_joint``, ``vivit_fact_enc``, ...) are aliases of the base 16x2 models. There is no
``vivit_fact_dot_tiny``: ViT-Ti's 3 heads cannot be split half in space, half in time.

VTN (Neimark et al., 2021): ``vtn_{size}_patch16_224`` is the factorised encoder with 1-frame tubelets
(a per-frame ViT) and a 3-layer temporal transformer over the frame class tokens. The paper's temporal
module is a Longformer (sliding-window attention for long inputs) and its head an MLP; at the 16-frame
clips used here full attention is exact and cheap, so vitzoo uses a standard transformer and a linear head.

Frame averaging (``frame_avg_{size}_patch{p}_{img}``): a ViT on every frame, features averaged over time;
a baseline without temporal modelling (TSN-style single-frame averaging).
"""

from __future__ import annotations

from functools import partial

from vitzoo.config import VideoConfig
from vitzoo.models.sizes import SIZES
from vitzoo.registry import MODELS

# Encoder name -> options fixed by the variant (pooling follows the paper for each model).
VIVIT_ENCODERS = {
    "joint": dict(class_token=True, global_pool="token"),
    "fact_enc": dict(class_token=True, global_pool="token"),
    "fact_sa": dict(class_token=False, global_pool="avg"),
    "fact_dot": dict(class_token=False, global_pool="avg"),
}
PER_FRAME = dict(class_token=True, global_pool="token")
# Size -> (patch, tubelet, frames, image size, temporal depth for the factorised encoder).
VIVIT_GEOMETRY = {
    "nano": (8, 2, 4, 32, 1),
    "micro": (4, 2, 8, 32, 2),
    "tiny": (16, 2, 32, 224, 4),
    "small": (16, 2, 32, 224, 4),
    "base": (16, 2, 32, 224, 4),
    "large": (16, 2, 32, 224, 4),
}


def _video(encoder: str, size: str, **geometry) -> VideoConfig:
    return VideoConfig(encoder=encoder, **SIZES[size], **VIVIT_ENCODERS.get(encoder, PER_FRAME), **geometry)


for _enc in VIVIT_ENCODERS:
    for _size, (_p, _t, _frames, _img, _tdepth) in VIVIT_GEOMETRY.items():
        if _enc == "fact_dot" and SIZES[_size]["num_heads"] % 2:
            continue  # ViT-Ti has 3 heads, which cannot be split half in space, half in time
        MODELS.add(
            f"vivit_{_enc}_{_size}_{_p}x{_t}",
            partial(
                _video,
                _enc,
                _size,
                patch_size=_p,
                tubelet_size=_t,
                num_frames=_frames,
                img_size=_img,
                temporal_depth=_tdepth,
            ),
        )
    MODELS.alias(f"vivit_{_enc}", f"vivit_{_enc}_base_16x2")

for _size in ("nano", "tiny", "small", "base"):
    _p, _img, _frames = (8, 32, 4) if _size == "nano" else (16, 224, 16)
    MODELS.add(
        f"vtn_{_size}_patch{_p}_{_img}",
        partial(
            _video,
            "fact_enc",
            _size,
            patch_size=_p,
            tubelet_size=1,
            num_frames=_frames,
            img_size=_img,
            temporal_depth=1 if _size == "nano" else 3,
        ),
    )

for _size, (_p, _img, _frames) in {"nano": (8, 32, 4), "micro": (4, 32, 8)}.items():
    MODELS.add(
        f"frame_avg_{_size}_patch{_p}_{_img}",
        partial(_video, "frame_avg", _size, patch_size=_p, tubelet_size=1, num_frames=_frames, img_size=_img),
    )
