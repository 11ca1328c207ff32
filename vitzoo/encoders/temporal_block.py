"""A ViT block plus a temporal attention branch: the base of Model 3's and TimeSformer's blocks."""

from __future__ import annotations

import torch
from torch import nn

from vitzoo.config import VideoConfig
from vitzoo.layers import Block
from vitzoo.layers.block import drop_path, layer_scale, make_attention


class TemporalBranchBlock(Block):
    """A ViT block (``norm1, attn, ls1, norm2, mlp, ls2``) with ``temporal_norm, temporal_attn, temporal_ls``.

    Subclasses decide where the branch runs in ``forward``. ``cfg.temporal_init`` is kept for their
    ``init_temporal``; ``copy_spatial_to_temporal`` is the ``"copy"`` rule both use.
    """

    def __init__(self, cfg: VideoConfig, *, drop_path_rate: float = 0.0) -> None:
        super().__init__(cfg, drop_path_rate=drop_path_rate)
        self.temporal_norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.norm_eps)
        self.temporal_attn = make_attention(cfg)
        self.temporal_ls = layer_scale(cfg.embed_dim, cfg.init_values)
        self.temporal_drop_path = drop_path(drop_path_rate)
        self.temporal_init = cfg.temporal_init

    @torch.no_grad()
    def copy_spatial_to_temporal(self) -> None:
        """Start the temporal attention and its norm as copies of the spatial ones."""
        self.temporal_attn.load_state_dict(self.attn.state_dict())
        self.temporal_norm.load_state_dict(self.norm1.state_dict())
