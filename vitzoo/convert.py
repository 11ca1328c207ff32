"""Converters from other libraries' models to vitzoo models (exact: same outputs)."""

from vitzoo.checkpoints.convert_hf import from_hf
from vitzoo.checkpoints.convert_timm import from_timm
from vitzoo.checkpoints.convert_torchvision import from_torchvision

__all__ = ["from_hf", "from_timm", "from_torchvision"]
