"""The official dataset layouts ``data.layout`` may name besides ``list`` and ``folders``.

Every module of this package registers one layout in :data:`LAYOUTS` (see :mod:`vitzoo.data.layouts.base`);
importing the package imports them all, so adding a layout means adding one file here.
"""

from __future__ import annotations

import importlib
import pkgutil

from vitzoo.data.layouts.base import LAYOUTS, Layout, LayoutSplit, SplitRequest, read_split, register_layout

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["LAYOUTS", "Layout", "LayoutSplit", "SplitRequest", "read_split", "register_layout"]
