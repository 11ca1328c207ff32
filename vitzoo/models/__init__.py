"""Model classes and the registered configurations. Importing registers every model name."""

from __future__ import annotations

from torch import nn

from vitzoo import encoders  # noqa: F401  (registers the encoder classes)
from vitzoo.config import VideoConfig, ViTConfig
from vitzoo.models import timesformer_zoo, video_zoo, vit_zoo  # noqa: F401  (register the model names)
from vitzoo.models.video import VideoTransformer
from vitzoo.models.vit import VisionTransformer


def build_model(cfg: ViTConfig) -> nn.Module:
    """The model a config describes: :class:`VideoTransformer` for a ``VideoConfig``, else a ViT."""
    return VideoTransformer(cfg) if isinstance(cfg, VideoConfig) else VisionTransformer(cfg)


__all__ = ["VideoTransformer", "VisionTransformer", "build_model"]
