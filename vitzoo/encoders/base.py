"""The encoder contract shared by every video encoder.

An encoder takes tubelet tokens ``(B, T, N, D)`` (no positional embedding yet: each encoder owns its
own, since the variants embed position differently) and returns pooled features ``(B, D)``, plus its
final token sequence when asked. Variants differ only by which encoder class the config names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from vitzoo.config import VideoConfig


@dataclass(frozen=True)
class ViTInit:
    """How an image ViT's parameters map onto an encoder (read by ``vitzoo.checkpoints.vit_to_video``).

    - ``trunk``: prefix, inside the encoder, of the module that takes the ViT's ``cls_token``,
      ``pos_embed``, ``blocks.*`` and ``norm.*`` under the same names ("" for the encoder itself).
    - ``pos_embed``: ``"spatial"`` (the ViT table resampled to the new grid) or ``"tile"`` (that table
      repeated at every time step, for joint attention).
    - ``zero``: encoder keys that start at zero (learned temporal embeddings).
    - ``temporal_copy``: per block, new temporal module -> ViT module it copies with ``temporal_init="copy"``.
    - ``temporal_zero``: per block, linear layers zeroed with ``temporal_init="zero"``.
    - ``block_zero``: per block, linear layers zeroed whatever ``temporal_init`` says (e.g. the output layer of a
      temporal branch that must start as a no-op even when its attention is copied).
    """

    trunk: str = ""
    pos_embed: str = "spatial"
    zero: tuple[str, ...] = ()
    temporal_copy: dict[str, str] = field(default_factory=dict)
    temporal_zero: tuple[str, ...] = ()
    block_zero: tuple[str, ...] = ()


class VideoEncoder(nn.Module):
    """Base class: shape checking and the gradient-checkpointing switch."""

    vit_init: ViTInit = ViTInit()

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_tubelets = cfg.num_tubelets
        self.num_patches = cfg.grid_size**2
        self.grad_checkpointing = False

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute block activations in backward (every submodule with such a switch)."""
        for module in self.modules():
            if hasattr(module, "grad_checkpointing"):
                module.grad_checkpointing = enable

    def check_tokens(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(B, T, N, D)`` with this encoder's T, N and D."""
        expected = (self.num_tubelets, self.num_patches, self.cfg.embed_dim)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"{type(self).__name__} expects tokens (B, T, N, D) = (B, {', '.join(map(str, expected))}), "
                f"got {tuple(x.shape)}; call model.resample(num_frames=..., img_size=...) for other sizes"
            )

    def forward(self, x: torch.Tensor, *, return_tokens: bool = False):
        """Tokens ``(B, T, N, D)`` -> features ``(B, D)``, or ``(features, tokens)``."""
        raise NotImplementedError

    @torch.no_grad()
    def resample(self, *, num_tubelets: int, grid: int) -> None:
        """Resample the positional embeddings to ``num_tubelets`` time steps and a ``grid x grid`` layout."""
        raise NotImplementedError
