"""The image Vision Transformer (Dosovitskiy et al., 2021) with timm's parameter names.

Because the names match timm's ``VisionTransformer``, a timm state dict loads as is and
``vitzoo.convert.from_timm`` only has to translate the constructor arguments.
"""

from __future__ import annotations

import logging

import torch
from einops import rearrange
from torch import nn

from vitzoo.config import ViTConfig
from vitzoo.layers import PatchEmbed, make_blocks, run_blocks
from vitzoo.layers.init import init_vit_weights
from vitzoo.layers.pos_embed import learned_embedding, resample_pos_embed

log = logging.getLogger(__name__)


class VisionTransformer(nn.Module):
    """ViT: patch embedding, class token, positional embedding, blocks, norm, pooling, linear head."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        dim = cfg.embed_dim
        self.num_prefix_tokens = int(cfg.class_token)
        self.grad_checkpointing = False
        self.patch_embed = PatchEmbed(
            patch_size=cfg.patch_size, in_chans=cfg.in_chans, embed_dim=dim, bias=not cfg.pre_norm
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if cfg.class_token else None
        embed_len = cfg.grid_size**2 + (0 if cfg.no_embed_class else self.num_prefix_tokens)
        self.pos_embed = learned_embedding(1, embed_len, dim)
        self.pos_drop = nn.Dropout(cfg.pos_drop_rate)
        self.norm_pre = nn.LayerNorm(dim, eps=cfg.norm_eps) if cfg.pre_norm else nn.Identity()
        self.blocks = make_blocks(cfg)
        self.norm = nn.Identity() if cfg.use_fc_norm else nn.LayerNorm(dim, eps=cfg.norm_eps)
        self.fc_norm = nn.LayerNorm(dim, eps=cfg.norm_eps) if cfg.use_fc_norm else nn.Identity()
        self.head_drop = nn.Dropout(cfg.drop_rate)
        self.head = nn.Linear(dim, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        self.apply(init_vit_weights)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1e-6)

    # ----------------------------------------------------------------------------------- helpers
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute block activations during backward to save memory."""
        self.grad_checkpointing = enable

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head with a freshly initialised one for ``num_classes`` (0: no head)."""
        self.cfg.num_classes = num_classes
        self.head = nn.Linear(self.cfg.embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.head.apply(init_vit_weights)

    def _pos_embed_for(self, grid: tuple[int, int]) -> torch.Tensor:
        trained = (self.cfg.grid_size, self.cfg.grid_size)
        if grid == trained:
            return self.pos_embed
        if not self.cfg.dynamic_img_size:
            raise ValueError(
                f"input of {grid[0] * self.cfg.patch_size}x{grid[1] * self.cfg.patch_size} px does not match "
                f"the model's img_size={self.cfg.img_size}; build with dynamic_img_size=True or resample()"
            )
        prefix = 0 if self.cfg.no_embed_class else self.num_prefix_tokens
        return resample_pos_embed(self.pos_embed, old_grid=trained, new_grid=grid, num_prefix_tokens=prefix)

    @torch.no_grad()
    def resample(self, *, img_size: int) -> None:
        """Permanently resample the positional embedding to a new input size (bicubic)."""
        old_grid = (self.cfg.grid_size,) * 2
        if img_size % self.cfg.patch_size:
            raise ValueError(f"img_size={img_size} is not divisible by patch_size={self.cfg.patch_size}")
        new_grid = (img_size // self.cfg.patch_size,) * 2
        prefix = 0 if self.cfg.no_embed_class else self.num_prefix_tokens
        pe = resample_pos_embed(self.pos_embed.data, old_grid=old_grid, new_grid=new_grid, num_prefix_tokens=prefix)
        self.pos_embed = nn.Parameter(pe)
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
        x = self.embed(x)
        x = run_blocks(self.blocks, x, checkpointing=self.grad_checkpointing and self.training)
        return self.norm(x)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, P + N, D)`` -> ``(B, D)`` by class token or mean of patch tokens."""
        if self.cfg.global_pool == "token":
            return x[:, 0]
        return x[:, self.num_prefix_tokens :].mean(dim=1)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool, (fc-)norm, dropout and classify the output of :meth:`forward_features`."""
        x = self.head_drop(self.fc_norm(self.pool(x)))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_intermediate_layers(
        self, x: torch.Tensor, n: int | list[int] = 1, *, reshape: bool = False, norm: bool = False
    ) -> list[torch.Tensor]:
        """Patch tokens after the last ``n`` blocks (or the blocks whose indices are listed).

        Returns ``(B, N, D)`` tensors, or ``(B, D, h, w)`` maps with ``reshape=True``; ``norm`` applies
        the final norm. Prefix (class) tokens are dropped.
        """
        depth = len(self.blocks)
        indices = list(range(depth - n, depth)) if isinstance(n, int) else list(n)
        if any(i < 0 or i >= depth for i in indices):
            raise ValueError(f"block indices {indices} out of range for depth {depth}")
        h, w = self.patch_embed.grid(x.shape[-2], x.shape[-1])
        x = self.embed(x)
        outputs = []
        for i, blk in enumerate(self.blocks[: max(indices) + 1]):
            x = blk(x)
            if i in indices:
                out = self.norm(x) if norm else x
                out = out[:, self.num_prefix_tokens :]  # (B, N, D)
                if reshape:
                    out = rearrange(out, "b (h w) d -> b d h w", h=h, w=w)
                outputs.append(out)
        return outputs
