"""Self-supervised methods as training tasks, and a name -> (task, config) registry for recipes and the CLI.

>>> import vitzoo
>>> from vitzoo.ssl.methods import build_method
>>> task = build_method("simclr", vitzoo.create("vit_nano_patch8_32", num_classes=0), temperature=0.2)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from vitzoo.registry import Registry
from vitzoo.schema import ConfigError, build
from vitzoo.ssl.methods.base import SSLMethod, feature_dim, unpack
from vitzoo.ssl.methods.byol import BYOL, BYOLConfig
from vitzoo.ssl.methods.config import MethodConfig
from vitzoo.ssl.methods.masked import MAEConfig, MaskedModeling, VideoMAEConfig
from vitzoo.ssl.methods.simclr import SimCLR, SimCLRConfig
from vitzoo.ssl.methods.simsiam import SimSiam, SimSiamConfig
from vitzoo.ssl.methods.supcon import SupCon, SupConConfig
from vitzoo.ssl.methods.vicreg import VICReg, VICRegConfig

METHODS: Registry[tuple[type[SSLMethod], type[MethodConfig]]] = Registry("SSL method", error=ConfigError)
METHODS.add("simclr", (SimCLR, SimCLRConfig))
METHODS.add("supcon", (SupCon, SupConConfig))
METHODS.add("byol", (BYOL, BYOLConfig))
METHODS.add("simsiam", (SimSiam, SimSiamConfig))
METHODS.add("vicreg", (VICReg, VICRegConfig))
METHODS.add("videomae", (MaskedModeling, VideoMAEConfig))
METHODS.add("mae", (MaskedModeling, MAEConfig))
MASKED = ("videomae", "mae")  # one augmented clip and its masks per sample, not views (vitzoo.ssl.masked_data)


def method_config(name: str, options: Mapping[str, Any] | None = None, *, prefix: str = "") -> MethodConfig:
    """The validated config dataclass of method ``name`` built from ``options`` (a mapping, e.g. from YAML).

    Unknown method names, unknown keys, mistyped and out-of-range values raise :class:`vitzoo.schema.ConfigError`
    with the closest known names; ``prefix`` (e.g. ``"method."``) is prepended to keys in errors.
    """
    return build(METHODS.get(name)[1], dict(options or {}), prefix, validate=True)


def build_method(name: str, model: nn.Module, **options: Any) -> SSLMethod:
    """Wrap backbone ``model`` (created with ``num_classes=0``) in method ``name`` with config ``options``."""
    return METHODS[name][0](model, method_config(name, options))


__all__ = [
    "BYOL",
    "MASKED",
    "METHODS",
    "MAEConfig",
    "MaskedModeling",
    "BYOLConfig",
    "MethodConfig",
    "SSLMethod",
    "SimCLR",
    "SimCLRConfig",
    "SimSiam",
    "SimSiamConfig",
    "SupCon",
    "SupConConfig",
    "VICReg",
    "VICRegConfig",
    "VideoMAEConfig",
    "build_method",
    "feature_dim",
    "method_config",
    "unpack",
]
