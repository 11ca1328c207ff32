"""The image Vision Transformer (Dosovitskiy et al., 2021) with timm's parameter names.

Because the names match timm's ``VisionTransformer``, a timm state dict loads as is and
``vitzoo.convert.from_timm`` only has to translate the constructor arguments.
"""

from __future__ import annotations

import logging

import torch
from einops import rearrange
from torch import nn

from vitzoo.config import ViTConfig, pair
from vitzoo.flops import Flops, block_flops, embed_flops, head_flops
from vitzoo.layers import PatchEmbed, make_blocks, run_blocks
from vitzoo.layers.block import collect_blocks
from vitzoo.layers.init import init_vit_weights
from vitzoo.layers.pos_embed import learned_embedding, resample_pos_embed
from vitzoo.models.base import Tap, ZooModel
from vitzoo.registry import family

log = logging.getLogger(__name__)


@family(ViTConfig)
class VisionTransformer(ZooModel):
    """ViT: patch embedding, class token, positional embedding, blocks, norm, pooling, linear head."""

    modality = "image"

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__(cfg)
        dim = cfg.embed_dim
        self.num_features = dim
        self.num_prefix_tokens = int(cfg.class_token)
        self.global_pool = cfg.global_pool
        self.grad_checkpointing = False
        self.patch_embed = PatchEmbed(
            patch_size=cfg.patch_size, in_chans=cfg.in_chans, embed_dim=dim, bias=not cfg.pre_norm
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if cfg.class_token else None
        h, w = cfg.grid_hw
        embed_len = h * w + (0 if cfg.no_embed_class else self.num_prefix_tokens)
        self.pos_embed = learned_embedding(1, embed_len, dim)
        self.pos_drop = nn.Dropout(cfg.pos_drop_rate)
        self.norm_pre = nn.LayerNorm(dim, eps=cfg.norm_eps) if cfg.pre_norm else nn.Identity()
        self.blocks = make_blocks(cfg)
        self.norm = nn.Identity() if cfg.use_fc_norm else nn.LayerNorm(dim, eps=cfg.norm_eps)
        self.fc_norm = nn.LayerNorm(dim, eps=cfg.norm_eps) if cfg.use_fc_norm else nn.Identity()
        self.head_drop = nn.Dropout(cfg.drop_rate)
        # the head is built before the generic init (not with linear_head) so that seeded weights stay as they were
        self.head = nn.Linear(dim, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        self.apply(init_vit_weights)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1e-6)

    # ----------------------------------------------------------------------------------- size
    def size_multiple(self) -> tuple[int, int]:
        return (self.cfg.patch_size,) * 2

    def _pos_embed_for(self, grid: tuple[int, int]) -> torch.Tensor:
        trained = self.cfg.grid_hw
        if grid == trained:
            return self.pos_embed
        prefix = 0 if self.cfg.no_embed_class else self.num_prefix_tokens
        return resample_pos_embed(self.pos_embed, old_grid=trained, new_grid=grid, num_prefix_tokens=prefix)

    @torch.no_grad()
    def resample(self, *, img_size: int | tuple[int, int]) -> None:
        """Permanently resample the positional embedding to a new input size (bicubic)."""
        h, w = pair(img_size)
        p = self.cfg.patch_size
        if h % p or w % p:
            raise ValueError(f"img_size={img_size} is not divisible by patch_size={p}")
        self.pos_embed = nn.Parameter(self._pos_embed_for((h // p, w // p)))
        self.cfg.img_size = img_size

    # ----------------------------------------------------------------------------------- forward
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels ``(B, C, H, W)`` -> tokens with prefix and positional embedding ``(B, P + N, D)``."""
        grid = self.patch_embed.grid(x.shape[-2], x.shape[-1])
        x = self.patch_embed(x)  # (B, N, D)
        pos_embed = self._pos_embed_for(grid)
        prefix = [self.cls_token.expand(x.shape[0], -1, -1)] if self.cls_token is not None else []
        if self.cfg.no_embed_class:
            x = torch.cat([*prefix, x + pos_embed], dim=1)  # (B, P + N, D)
        else:
            x = torch.cat([*prefix, x], dim=1) + pos_embed  # (B, P + N, D)
        return self.norm_pre(self.pos_drop(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """All tokens after the final norm, ``(B, P + N, D)``."""
        self.check_input(x)
        x = self.embed(x)
        x = run_blocks(self.blocks, x, checkpointing=self.grad_checkpointing and self.training)
        return self.norm(x)

    @property
    def num_taps(self) -> int:
        return len(self.blocks)

    def forward_taps(
        self, x: torch.Tensor, take: set[int], *, norm: bool, stop_at: int | None
    ) -> tuple[torch.Tensor, list[Tap]]:
        h, w = self.patch_embed.grid(x.shape[-2], x.shape[-1])
        x, kept = collect_blocks(self.blocks, self.embed(x), take, stop_at=stop_at)
        p = self.num_prefix_tokens
        taps = []
        for tokens in kept:
            tokens = self.norm(tokens) if norm else tokens
            grid = rearrange(tokens[:, p:], "b (h w) d -> b h w d", h=h, w=w)  # (B, h, w, D)
            taps.append((grid, tokens[:, :p] if p else None))
        return self.norm(x), taps

    def get_intermediate_layers(
        self, x: torch.Tensor, n: int | list[int] = 1, *, reshape: bool = False, norm: bool = False
    ) -> list[torch.Tensor]:
        """Patch tokens after the last ``n`` blocks (or the blocks whose indices are listed), as timm's.

        Returns ``(B, N, D)`` tensors, or ``(B, D, h, w)`` maps with ``reshape=True``; ``norm`` applies
        the final norm. Prefix (class) tokens are dropped.
        """
        return self.forward_intermediates(
            x, n, norm=norm, output_fmt="NCHW" if reshape else "NLC", intermediates_only=True
        )

    # ----------------------------------------------------------------------------------- facts
    @classmethod
    def num_tokens(cls, cfg: ViTConfig) -> int:
        h, w = cfg.grid_hw
        return h * w

    @classmethod
    def flops(cls, cfg: ViTConfig) -> Flops:
        """Patch embedding, ``depth`` blocks over ``P + N`` tokens, head."""
        n = cls.num_tokens(cfg)
        length = n + int(cfg.class_token)
        blocks = block_flops(cfg, tokens=length, groups=1, length=length).scaled(cfg.depth)
        embed = embed_flops(tokens=n, dim=cfg.embed_dim, pixels_per_token=cfg.in_chans * cfg.patch_size**2)
        return embed + blocks + head_flops(num_features=cfg.embed_dim, num_classes=cfg.num_classes)

    @classmethod
    def architecture(cls, cfg: ViTConfig) -> str:
        return "image"
