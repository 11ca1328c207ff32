"""``vitzoo.convert.from_torchvision(model)``: torchvision models -> vitzoo models, by torchvision class."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn


def _swin(model: nn.Module, **options) -> nn.Module:
    from vitzoo.checkpoints.convert_torchvision_swin import from_torchvision_swin

    return from_torchvision_swin(model, **options)


# torchvision class name -> converter (each imported when used)
CONVERTERS: dict[str, Callable[..., nn.Module]] = {
    "SwinTransformer3d": _swin,
    "SwinTransformer": _swin,
}


def from_torchvision(model: nn.Module, **options) -> nn.Module:
    """The vitzoo model equal to a torchvision ``model`` (its weights included); ``options`` go to the converter.

    Supported: ``SwinTransformer3d`` (``swin3d_t/s/b``) and ``SwinTransformer`` (``swin_t/s/b``, as a one-frame
    Swin); see :mod:`vitzoo.checkpoints.convert_torchvision_swin`. Other classes raise ``TypeError``.
    """
    name = type(model).__name__
    if name not in CONVERTERS:
        raise TypeError(f"no vitzoo converter for torchvision {name}; supported: {', '.join(sorted(CONVERTERS))}")
    return CONVERTERS[name](model, **options)
