"""Self-supervised methods as training tasks, and a name -> (task, config) table for recipes and the CLI.

>>> import vitzoo
>>> from vitzoo.ssl.methods import build_method
>>> task = build_method("simclr", vitzoo.create("vit_nano_patch8_32", num_classes=0), temperature=0.2)
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from torch import nn

from vitzoo.ssl.methods.base import SSLMethod, feature_dim, unpack
from vitzoo.ssl.methods.byol import BYOL, BYOLConfig
from vitzoo.ssl.methods.config import MethodConfig
from vitzoo.ssl.methods.simclr import SimCLR, SimCLRConfig
from vitzoo.ssl.methods.simsiam import SimSiam, SimSiamConfig
from vitzoo.ssl.methods.supcon import SupCon, SupConConfig
from vitzoo.ssl.methods.vicreg import VICReg, VICRegConfig

METHODS: dict[str, tuple[type[SSLMethod], type[MethodConfig]]] = {
    "simclr": (SimCLR, SimCLRConfig),
    "supcon": (SupCon, SupConConfig),
    "byol": (BYOL, BYOLConfig),
    "simsiam": (SimSiam, SimSiamConfig),
    "vicreg": (VICReg, VICRegConfig),
}


def method_config(name: str, **options: Any) -> MethodConfig:
    """The config dataclass of method ``name`` with ``options`` set; unknown names or options raise."""
    if name not in METHODS:
        close = difflib.get_close_matches(name, METHODS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown SSL method {name!r}{hint} (known: {', '.join(METHODS)})")
    config_cls = METHODS[name][1]
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ValueError(f"{name} has no option(s) {unknown}; valid: {sorted(fields)}")
    return config_cls(**options)


def build_method(name: str, model: nn.Module, **options: Any) -> SSLMethod:
    """Wrap backbone ``model`` (created with ``num_classes=0``) in method ``name`` with config ``options``."""
    cfg = method_config(name, **options)
    return METHODS[name][0](model, cfg)


__all__ = [
    "BYOL",
    "METHODS",
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
    "build_method",
    "feature_dim",
    "method_config",
    "unpack",
]
