"""Converters from other libraries' models to vitzoo models (exact: same outputs).

``from_timm`` and ``from_hf`` take a model object, its checkpoint folder, or ``"hf-hub:<org>/<name>"``;
``from_hub`` takes any checkpoint folder or Hub name (vitzoo, timm or transformers layout) and returns the model
in train mode, ready to fine-tune (``vitzoo.load`` is the same in eval mode). ``from_torchvision`` takes a
torchvision model object (``mvit_v1_b``, ``mvit_v2_s``, ``swin3d_t/s/b``, the image ``swin_t/s/b``, or the
classes ``MViT(...)`` / ``SwinTransformer3d(...)`` built directly) and picks the converter by its class.
"""

from vitzoo.checkpoints.convert_hf import from_hf
from vitzoo.checkpoints.convert_timm import from_timm
from vitzoo.checkpoints.convert_torchvision import from_torchvision
from vitzoo.checkpoints.source import from_hub

__all__ = ["from_hf", "from_hub", "from_timm", "from_torchvision"]
