"""Model classes and the registered configurations. Importing registers every family and model name."""

from __future__ import annotations

from vitzoo import encoders  # noqa: F401  (registers the encoder classes)
from vitzoo.config import BaseConfig
from vitzoo.models import mvit_zoo, swin_zoo, timesformer_zoo, video_zoo, vit_zoo  # noqa: F401  (register the model names)
from vitzoo.models.base import ZooModel
from vitzoo.models.mvit import MViT
from vitzoo.models.swin import VideoSwin
from vitzoo.models.video import VideoTransformer
from vitzoo.models.vit import VisionTransformer
from vitzoo.registry import FAMILIES


def family_of(cfg: BaseConfig) -> type[ZooModel]:
    """The model class that builds configs of ``cfg``'s class."""
    return FAMILIES.get(type(cfg).__name__)


def build_model(cfg: BaseConfig) -> ZooModel:
    """The model a config describes (its family's model class)."""
    return family_of(cfg)(cfg)


__all__ = ["MViT", "VideoSwin", "VideoTransformer", "VisionTransformer", "ZooModel", "build_model", "family_of"]
