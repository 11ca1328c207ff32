"""The implementations a benchmark compares: vitzoo itself and every registered reference.

References are family facts: each zoo file registers its own (``vitzoo.models.reference.Reference`` in
``vitzoo.registry.REFERENCES``) under the architecture keys it implements, and :func:`references_for` finds
those of a config through its model family (``architecture(cfg)``). Today: timm's ViT; ``transformers``'
``VivitForVideoClassification`` (SDPA) for ViViT Model 1 and ``TimesformerForVideoClassification``;
vit-pytorch's ``ViViT`` for Models 2 and 3 (it has no qkv bias, so both sides of those comparisons are built
with ``qkv_bias=False``); no public reference for Model 4 or frame averaging.
"""

from __future__ import annotations

from torch import nn

from vitzoo import models
from vitzoo.config import BaseConfig
from vitzoo.models.reference import Reference
from vitzoo.registry import REFERENCES


def build_vitzoo(cfg: BaseConfig) -> nn.Module:
    """The vitzoo model itself."""
    return models.build_model(cfg)


VITZOO = Reference("vitzoo", "vitzoo", build_vitzoo)


def implementation(name: str) -> Reference:
    """``"vitzoo"`` or a registered reference, by name (unknown names raise with close matches)."""
    return VITZOO if name == "vitzoo" else REFERENCES.get(name)


def implementation_names() -> list[str]:
    """Every implementation a case may name."""
    return ["vitzoo", *REFERENCES]


def architecture(cfg: BaseConfig) -> str:
    """The architecture key of ``cfg``, as its model family says (``"image"``, a video encoder name, ...)."""
    return models.family_of(cfg).architecture(cfg)


def references_for(cfg: BaseConfig) -> tuple[str, ...]:
    """Names of the registered references that implement ``cfg``'s architecture."""
    key = architecture(cfg)
    return tuple(name for name in REFERENCES if key in REFERENCES.get(name).architectures)
