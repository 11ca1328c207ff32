"""Video transformers: ``TubeletEmbed -> encoder -> head``. The config's ``encoder`` picks the variant."""

from __future__ import annotations

import torch
from torch import nn

from vitzoo.config import VideoConfig
from vitzoo.layers import TubeletEmbed
from vitzoo.layers.init import init_vit_weights
from vitzoo.registry import ENCODERS


class VideoTransformer(nn.Module):
    """A video classifier on clips ``(B, C, T, H, W)`` (torchvision's video layout).

    ``forward_features`` returns the encoder's pooled features ``(B, D)``; ``forward_head`` classifies them.
    """

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.patch_embed = TubeletEmbed(
            tubelet_size=cfg.tubelet_size, patch_size=cfg.patch_size, in_chans=cfg.in_chans, embed_dim=cfg.embed_dim
        )
        self.encoder = ENCODERS.get(cfg.encoder)(cfg)
        self.head_drop = nn.Dropout(cfg.drop_rate)
        self.head = nn.Linear(cfg.embed_dim, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        self.head.apply(init_vit_weights)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """Expected ``(C, T, H, W)`` of one clip."""
        c = self.cfg
        return (c.in_chans, c.num_frames, c.img_size, c.img_size)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute encoder block activations during backward to save memory."""
        self.encoder.set_grad_checkpointing(enable)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head with a freshly initialised one for ``num_classes`` (0: no head)."""
        self.cfg.num_classes = num_classes
        self.head = nn.Linear(self.cfg.embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.head.apply(init_vit_weights)

    @torch.no_grad()
    def resample(self, *, num_frames: int | None = None, img_size: int | None = None) -> None:
        """Permanently adapt the positional embeddings to a new clip length and/or frame size."""
        cfg = self.cfg
        num_frames = cfg.num_frames if num_frames is None else num_frames
        img_size = cfg.img_size if img_size is None else img_size
        if num_frames % cfg.tubelet_size or img_size % cfg.patch_size:
            raise ValueError(
                f"{num_frames} frames at {img_size} px do not divide into "
                f"{cfg.tubelet_size}x{cfg.patch_size}x{cfg.patch_size} tubelets"
            )
        self.encoder.resample(num_tubelets=num_frames // cfg.tubelet_size, grid=img_size // cfg.patch_size)
        cfg.num_frames, cfg.img_size = num_frames, img_size

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(B, C, T, H, W)`` with this model's C, T, H, W."""
        if x.ndim != 5 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"expected clips (B, C, T, H, W) = (B, {', '.join(map(str, self.input_shape))}), got "
                f"{tuple(x.shape)}; use model.resample(num_frames=..., img_size=...) to change the input size"
            )

    def forward_features(self, x: torch.Tensor, *, return_tokens: bool = False):
        """Clips ``(B, C, T, H, W)`` -> pooled features ``(B, D)`` (and the encoder's final tokens)."""
        self.check_input(x)
        tokens = self.patch_embed(x)  # (B, T', N, D)
        return self.encoder(tokens, return_tokens=return_tokens)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Dropout and classify pooled features ``(B, D)``."""
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
