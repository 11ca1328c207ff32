"""torchvision models -> vitzoo models with identical outputs: ``from_torchvision`` picks the converter by class.

Each family's converter lives in its own module, imported only when a model of its class is converted (torchvision
is never imported by vitzoo itself). A family adds one row to :data:`CONVERTERS`.
"""

from __future__ import annotations

import importlib

from torch import nn

_SWIN = "vitzoo.checkpoints.convert_torchvision_swin:from_torchvision_swin"
# torchvision class (module, name) -> "vitzoo module:function" converting an instance of it.
CONVERTERS: dict[tuple[str, str], str] = {
    ("torchvision.models.video.mvit", "MViT"): "vitzoo.checkpoints.convert_torchvision_mvit:from_torchvision_mvit",
    ("torchvision.models.video.swin_transformer", "SwinTransformer3d"): _SWIN,
    ("torchvision.models.swin_transformer", "SwinTransformer"): _SWIN,  # an image Swin, as a one-frame Swin
}


def from_torchvision(model: nn.Module, **options) -> nn.Module:
    """The vitzoo model equivalent to torchvision's ``model`` (its architecture and weights), in eval mode.

    Supported: ``torchvision.models.video.MViT`` (``mvit_v1_b``, ``mvit_v2_s`` or the class built directly),
    ``SwinTransformer3d`` (``swin3d_t/s/b``) and the image ``SwinTransformer`` (``swin_t/s/b``, as a one-frame
    Swin; ``options``: ``num_frames``, ``img_size``, ``dynamic_size``, see
    :mod:`vitzoo.checkpoints.convert_torchvision_swin`). torchvision options vitzoo does not implement raise
    ``NotImplementedError`` naming the option; other classes raise ``TypeError``.
    """
    cls = type(model)
    target = CONVERTERS.get((cls.__module__, cls.__name__))
    if target is None:
        known = ", ".join(f"{name} ({module})" for module, name in CONVERTERS)
        raise TypeError(f"no vitzoo converter for {cls.__module__}.{cls.__name__}; vitzoo converts: {known}")
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)(model, **options)
