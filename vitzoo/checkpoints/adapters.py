"""The table of pretrained-weight adapters, one per model family that needs one, keyed by config class.

An adapter brings a checkpoint in a family's other layouts (e.g. an image Swin, or torchvision's keys, for a video
Swin) to the layout the family's model loads, before :func:`~vitzoo.checkpoints.load.load_pretrained` applies the
generic fix-ups. It is called as ``adapter(state, source_cfg, cfg, *, source, tubelet_init)`` with the checkpoint's
tensors, its config (None: unknown), the model's config, the checkpoint's name for messages and the caller's
``tubelet_init``, and returns ``(state, source_cfg)``: the config is None once the tensors are no longer those it
describes (e.g. after inflation).

The table lives in the checkpoints layer so that models never import it: a family's adapter module in
``vitzoo/checkpoints/`` registers itself with :func:`adapter` (imported by ``vitzoo/checkpoints/__init__.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vitzoo.registry import Registry

# config class name (as vitzoo.registry.FAMILIES keys it) -> adapter
ADAPTERS: Registry[Callable[..., tuple[dict, Any]]] = Registry("pretrained-weight adapter")


def adapter(config_cls: type) -> Callable:
    """Decorator: the decorated function adapts checkpoints for models built from configs of class ``config_cls``."""
    return ADAPTERS.register(config_cls.__name__)


def adapter_for(cfg: Any) -> Callable[..., tuple[dict, Any]] | None:
    """The adapter registered for ``cfg``'s class (or the nearest base class that has one); None if there is none."""
    for cls in type(cfg).__mro__:
        if cls.__name__ in ADAPTERS:
            return ADAPTERS.get(cls.__name__)
    return None
