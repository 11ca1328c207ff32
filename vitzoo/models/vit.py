"""The image Vision Transformer (Dosovitskiy et al., 2021) with timm's parameter names.

Because the names match timm's ``VisionTransformer``, a timm state dict loads as is and
``vitzoo.convert.from_timm`` only has to translate the constructor arguments.
"""

from __future__ import annotations

import logging
from functools import partial

import torch
from einops import rearrange
from timm.layers import AttentionPoolLatent
from torch import nn

from vitzoo.config import ViTConfig, pair
from vitzoo.flops import Flops, block_flops, embed_flops, head_flops, matmul_flops
from vitzoo.layers import PatchEmbed, make_blocks, run_blocks
from vitzoo.layers.block import collect_blocks
from vitzoo.layers.groups import stack_matcher
from vitzoo.layers.init import init_vit_weights
from vitzoo.layers.mlp import make_activation
from vitzoo.layers.pos_embed import learned_embedding, resample_pos_embed
from vitzoo.layers.token_merging import Merging, merge_plan, run_merging, weighted_mean
from vitzoo.layers.visible import gather_tokens, split_mask
from vitzoo.models.base import NO_WEIGHT_DECAY, Tap, ZooModel
from vitzoo.registry import family

log = logging.getLogger(__name__)


def attention_pool_flops(cfg: ViTConfig, *, tokens: int) -> Flops:
    """timm's ``AttentionPoolLatent``: one learned query over ``tokens`` keys / values, projection, MLP."""
    d, hidden = cfg.embed_dim, int(cfg.embed_dim * cfg.mlp_ratio)
    return Flops(
        qkv=matmul_flops(1, d, d) + matmul_flops(tokens, 2 * d, d),
        attention=2 * matmul_flops(1, tokens, d),  # scores and weighted sum of the one query
        proj=matmul_flops(1, d, d),
        mlp=matmul_flops(1, hidden, d) * 2,
    )


@family(ViTConfig)
class VisionTransformer(ZooModel):
    """ViT: patch embedding, class token, positional embedding, blocks, norm, pooling, linear head.

    Options of timm's ViT that checkpoints people use need: register tokens (``reg_tokens``, DINOv2 with
    registers), DeiT's distillation token with its second head (``dist_token``: logits are the mean of both
    heads, as timm's at inference) and SigLIP's attention pooling (``global_pool="map"``, timm's
    ``AttentionPoolLatent``). Prefix tokens come in timm's order: class, distillation, registers.
    """

    modality = "image"
    no_weight_decay_names = NO_WEIGHT_DECAY | {"dist_token", "reg_token"}  # prefix tokens are not decayed
    interpolation = "bicubic"  # timm's ViT preprocessing
    crop_pct = 0.9

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__(cfg)
        dim = cfg.embed_dim
        self.num_features = dim
        self.num_prefix_tokens = cfg.num_prefix_tokens
        self.global_pool = cfg.global_pool
        self.pool_include_prefix = cfg.pool_include_prefix  # as timm's: "avg" / "map" also pool the prefix tokens
        self.grad_checkpointing = False
        self.patch_embed = PatchEmbed(
            patch_size=cfg.patch_size, in_chans=cfg.in_chans, embed_dim=dim, bias=not cfg.pre_norm
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if cfg.class_token else None
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim)) if cfg.dist_token else None
        self.reg_token = nn.Parameter(torch.zeros(1, cfg.reg_tokens, dim)) if cfg.reg_tokens else None
        h, w = cfg.grid_hw
        embed_len = h * w + (0 if cfg.no_embed_class else self.num_prefix_tokens)
        self.pos_embed = learned_embedding(1, embed_len, dim)
        self.pos_drop = nn.Dropout(cfg.pos_drop_rate)
        self.norm_pre = nn.LayerNorm(dim, eps=cfg.norm_eps) if cfg.pre_norm else nn.Identity()
        self.blocks = make_blocks(cfg)
        self.norm = nn.Identity() if cfg.use_fc_norm else nn.LayerNorm(dim, eps=cfg.norm_eps)
        fc_eps = cfg.norm_eps if cfg.fc_norm_eps is None else cfg.fc_norm_eps
        self.fc_norm = nn.LayerNorm(dim, eps=fc_eps) if cfg.use_fc_norm else nn.Identity()
        self.attn_pool = self._attention_pool(cfg) if cfg.global_pool == "map" else None
        self.head_drop = nn.Dropout(cfg.drop_rate)
        # the head is built before the generic init (not with linear_head) so that seeded weights stay as they were
        self.head = nn.Linear(dim, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        self.head_dist = self._dist_head(cfg.num_classes) if cfg.dist_token else None
        self.apply(init_vit_weights)
        for token in (self.cls_token, self.dist_token, self.reg_token):
            if token is not None:
                nn.init.normal_(token, std=1e-6)
        self._merging: Merging | None = None  # token merging (ToMe), from cfg.token_merging
        self._token_sizes: torch.Tensor | None = None
        self.apply_token_merging()

    @staticmethod
    def _attention_pool(cfg: ViTConfig) -> nn.Module:
        """timm's ``AttentionPoolLatent`` as timm's ViT builds it for ``global_pool="map"`` (SigLIP)."""
        return AttentionPoolLatent(
            cfg.embed_dim,
            num_heads=cfg.num_heads,
            mlp_ratio=cfg.mlp_ratio,
            norm_layer=partial(nn.LayerNorm, eps=cfg.norm_eps),
            act_layer=lambda **_: make_activation(cfg.act),
        )

    def _dist_head(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    # ----------------------------------------------------------------------------------- size
    def size_multiple(self) -> tuple[int, int]:
        return (self.cfg.patch_size,) * 2

    def _pos_embed_for(self, grid: tuple[int, int]) -> torch.Tensor:
        trained = self.cfg.grid_hw
        if grid == trained:
            return self.pos_embed
        prefix = 0 if self.cfg.no_embed_class else self.num_prefix_tokens
        return resample_pos_embed(
            self.pos_embed,
            old_grid=trained,
            new_grid=grid,
            num_prefix_tokens=prefix,
            antialias=self.cfg.resample_antialias,
        )

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
        tokens = (self.cls_token, self.dist_token, self.reg_token)
        prefix = [t.expand(x.shape[0], -1, -1) for t in tokens if t is not None]  # (B, 1 or R, D) each
        if self.cfg.no_embed_class:
            x = torch.cat([*prefix, x + pos_embed], dim=1)  # (B, P + N, D)
        else:
            x = torch.cat([*prefix, x], dim=1) + pos_embed  # (B, P + N, D)
        return self.norm_pre(self.pos_drop(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """All tokens after the final norm, ``(B, P + N, D)``.

        With token merging on (``token_merging`` / :meth:`set_token_merging`): ``(B, P + N', D)``, the prefix tokens
        then ``N'`` merged tokens that form no grid (unmerged ones in their order, then those merged into), each
        standing for :attr:`token_sizes` patches.
        """
        self.check_input(x)
        x = self.embed(x)
        checkpointing = self.grad_checkpointing and self.training
        if self._merging is None:
            x = run_blocks(self.blocks, x, checkpointing=checkpointing)
        else:
            x, self._token_sizes, _ = run_merging(self.blocks, x, self._merging, checkpointing=checkpointing)
        return self.norm(x)

    def forward_visible(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Token dropping (MAE): images ``(B, C, H, W)`` and a mask ``(B, h*w)`` over the patch grid (``True`` =
        masked, the same count per sample) -> the final tokens of the prefix and the visible patches,
        ``(B, P + N_v, D)``, grid order kept. Positions are added before the visible patches are gathered."""
        self.check_input(x)
        self.check_not_merging("forward_visible (token dropping)")
        grid = self.patch_embed.grid(x.shape[-2], x.shape[-1])
        x = self.patch_embed(x)  # (B, N, D)
        pos_embed = self._pos_embed_for(grid)
        p = 0 if self.cfg.no_embed_class else self.num_prefix_tokens  # prefix entries in the table
        visible, _ = split_mask(mask, x.shape[1])  # (B, N_v)
        x = gather_tokens(x + pos_embed[:, p:], visible)  # (B, N_v, D)
        prefix = [t for t in (self.cls_token, self.dist_token, self.reg_token) if t is not None]
        if prefix:
            prefix = torch.cat(prefix, dim=1)  # (1, P, D)
            prefix = prefix + pos_embed[:, :p] if p else prefix
            x = torch.cat([prefix.expand(x.shape[0], -1, -1), x], dim=1)  # (B, P + N_v, D)
        x = self.norm_pre(self.pos_drop(x))
        x = run_blocks(self.blocks, x, checkpointing=self.grad_checkpointing and self.training)
        return self.norm(x)

    def apply_token_merging(self) -> None:
        cfg = self.cfg
        self._merging = merge_plan(
            cfg.token_merging, len(self.blocks), cfg.token_merging_prop_attn, self.num_prefix_tokens
        )
        self._token_sizes = None

    @property
    def merging(self) -> bool:
        return self._merging is not None

    @property
    def token_sizes(self) -> torch.Tensor | None:
        return self._token_sizes if self._merging is not None else None

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, P + N, D)`` -> ``(B, D)``: class token, mean of the patch tokens, or attention pooling (``map``);
        ``avg`` and ``map`` pool the prefix tokens too with ``pool_include_prefix`` (as timm's)."""
        if self.global_pool not in ("avg", "map") or not self.pool_include_prefix and self.global_pool == "avg":
            return super().pool(x)  # (merged tokens: weighted by their sizes)
        if self.global_pool == "avg":
            return weighted_mean(x, self.token_sizes)  # prefix tokens included (each of size 1)
        tokens = x if self.pool_include_prefix else x[:, self.num_prefix_tokens :]  # (B, [P +] N, D)
        return self.attn_pool(tokens)

    def pool_choices(self) -> tuple[str, ...]:
        """``""``, ``avg``, ``token`` with a class token, ``map`` while the attention pool is there (timm's)."""
        return ("", "avg") + ("token",) * self.cfg.class_token + ("map",) * (self.attn_pool is not None)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """As :meth:`ZooModel.forward_head`; with a distillation token (DeiT) each of the class and distillation
        tokens has its own head and the logits (features with ``pre_logits``) are the mean of the two."""
        if self.head_dist is None:
            return super().forward_head(x, pre_logits)
        cls, dist = self.head_drop(x[:, 0]), self.head_drop(x[:, 1])  # (B, D) each
        if pre_logits:
            return (cls + dist) / 2
        return (self.head(cls) + self.head_dist(dist)) / 2

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        super().reset_classifier(num_classes, global_pool)
        if self.global_pool != "map":
            self.attn_pool = None  # as timm's: another pooling drops the attention pool
        if self.head_dist is not None:
            self.head_dist = self._dist_head(num_classes)
            self.head_dist.apply(init_vit_weights)

    def group_matcher(self, coarse: bool = False) -> dict:
        """timm's layer groups: the stem (embedding, class token, positions), then one group per block; the rest
        (norms, registers, head) last, as ``vitzoo.train.optim.layer_ids`` numbers them."""
        return stack_matcher(r"^patch_embed", [("", len(self.blocks))])

    @property
    def num_taps(self) -> int:
        return len(self.blocks)

    @property
    def feature_info(self) -> list[dict]:
        return [dict(module=f"blocks.{i}", num_chs=self.num_features, reduction=self.cfg.patch_size)
                for i in range(len(self.blocks))]  # fmt: skip

    def prune_taps(self, keep: int) -> None:
        self.blocks = self.blocks[:keep]

    def forward_taps(
        self, x: torch.Tensor, take: set[int], *, norm: bool, stop_at: int | None
    ) -> tuple[torch.Tensor, list[Tap]]:
        h, w = self.patch_embed.grid(x.shape[-2], x.shape[-1])
        checkpointing = self.grad_checkpointing and self.training
        if self._merging is None:
            x, kept = collect_blocks(self.blocks, self.embed(x), take, stop_at=stop_at, checkpointing=checkpointing)
        else:
            x, self._token_sizes, kept = run_merging(
                self.blocks, self.embed(x), self._merging, take=take, stop_at=stop_at, checkpointing=checkpointing
            )
        p = self.num_prefix_tokens
        taps = []
        for tokens in kept:
            tokens = self.norm(tokens) if norm else tokens
            if self._merging is None:
                grid = rearrange(tokens[:, p:], "b (h w) d -> b h w d", h=h, w=w)  # (B, h, w, D)
            else:
                grid = tokens[:, p:]  # (B, N_i, D): merged tokens form no grid
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
        length = n + cfg.num_prefix_tokens
        blocks = block_flops(cfg, tokens=length, groups=1, length=length).scaled(cfg.depth)
        embed = embed_flops(tokens=n, dim=cfg.embed_dim, pixels_per_token=cfg.in_chans * cfg.patch_size**2)
        heads = 2 if cfg.dist_token else 1
        head = head_flops(num_features=cfg.embed_dim, num_classes=cfg.num_classes).scaled(heads)
        pooled = length if cfg.pool_include_prefix else n
        pool = attention_pool_flops(cfg, tokens=pooled) if cfg.global_pool == "map" else Flops()
        return embed + blocks + pool + head

    @classmethod
    def architecture(cls, cfg: ViTConfig) -> str:
        return "image"
