"""``features_only`` backbones: a model wrapped in timm's ``FeatureGetterNet``, yielding its chosen taps.

``vitzoo.create(name, features_only=True, out_indices=...)`` returns a :class:`FeatureBackbone`, as
``timm.create_model(..., features_only=True)`` does for timm's ViTs: the model is pruned after the last tap asked
for (``prune_intermediate_layers``), ``feature_info`` describes the kept taps, and ``forward(x)`` returns the list
of maps, ``(B, C, H, W)`` for an image model and ``(B, C, T, H, W)`` for a video model.
"""

from __future__ import annotations

import torch
from timm.models._features import FeatureGetterNet

from vitzoo.models.base import OUTPUT_FORMATS, ZooModel


class FeatureBackbone(FeatureGetterNet):
    """timm's ``FeatureGetterNet`` around a vitzoo model; video maps come channels first, ``NCTHW``.

    Args:
        model: the model (pruned in place unless ``prune=False``).
        out_indices: taps to return: the last ``n`` for an int, those listed (negative from the end).
        norm: apply the final norm to the taps (``forward_intermediates(norm=True)``).
        output_fmt: ``NCHW`` / ``NHWC`` for image models, ``NCTHW`` / ``NTHWC`` for video models
            (default: channels first).
    """

    def __init__(
        self,
        model: ZooModel,
        out_indices: int | list[int] | tuple[int, ...] = 4,
        *,
        norm: bool = False,
        prune: bool = True,
        output_fmt: str | None = None,
    ) -> None:
        fmts = OUTPUT_FORMATS[model.modality]
        fmt = output_fmt or fmts[0]
        if fmt not in fmts[:2]:
            raise ValueError(f"output_fmt={fmt!r}: a {model.modality} backbone yields one of {list(fmts[:2])}")
        if isinstance(out_indices, int):
            out_indices = min(out_indices, model.num_taps)  # timm's default (4) on a model with fewer taps
        super().__init__(model, out_indices=out_indices, norm=norm, prune=prune)
        self.fmt = fmt

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Input batch -> the chosen taps, in order, as ``self.fmt`` maps."""
        return self.model.forward_intermediates(
            x, indices=self.out_indices, norm=self.norm, output_fmt=self.fmt, intermediates_only=True
        )
