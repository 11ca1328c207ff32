"""TimeSformer (Bertasius et al., 2021): divided space-time attention with a class token.

Every block runs, in this order (the paper's Fig. 1 "Divided Space-Time", HF ``TimesformerLayer``):

1. temporal attention over the ``T`` tokens at each spatial location (the class token takes no part), followed
   by a linear ``temporal_fc``: ``x += temporal_fc(TemporalAttn(LN(x)))``;
2. spatial attention over the ``N`` tokens of each frame, with the class token copied into every frame; the
   ``T`` class-token updates are averaged back into the one class token;
3. the MLP on every token, the class token included.

The spatial attention, its norm and the MLP carry a ViT block's names (``norm1, attn, norm2, mlp``), so
image weights load as is. Position is embedded as in TimeSformer: a spatial table with a class entry
``pos_embed (1, 1 + N, D)`` and a temporal table ``time_embed (1, T, D)`` added to the patch tokens only.
Features are the class token after the final norm.

Initialisation from an image ViT (TimeSformer's ``load_pretrained``): ``time_embed`` and ``temporal_fc`` start
at zero, so every block starts as the ViT block applied frame by frame (up to the class-token averaging, see
``tests/encoders/test_timesformer.py``); with ``temporal_init="copy"`` (the registered models' setting, TimeSformer's
recipe) the temporal attention and its norm are copies of the spatial ones, with ``"zero"`` they keep their
fresh random values. ``temporal_fc`` is never zeroed together with the attention's output projection: both
at zero would leave the temporal branch without gradient.

Tokens are ``(B, 1 + T*N, D)`` between blocks (and from ``forward_features``): the class token, then the patch
tokens time-major. HF keeps them ``(h, w, t)``; no weight depends on that order (the tables are indexed by
location and by frame), so the HF converter copies them unchanged. With token merging every block merges the same
positions in every frame after its spatial attention (:mod:`vitzoo.encoders.grid_merging`): ``(B, 1 + T*N', D)``.
"""

from __future__ import annotations

import torch
import torch.utils.checkpoint
from einops import rearrange, repeat
from torch import nn

from vitzoo.config import VideoConfig
from vitzoo.encoders.base import Grid, ViTInit, token_taps
from vitzoo.encoders.grid_merging import GridMergingEncoder
from vitzoo.encoders.temporal_block import TemporalBranchBlock
from vitzoo.flops import Flops, attention_only_flops, matmul_flops
from vitzoo.layers import make_blocks
from vitzoo.layers.block import collect_blocks
from vitzoo.layers.init import init_vit_weights
from vitzoo.layers.pos_embed import learned_embedding, resample_pos_embed, resample_temporal_pos_embed
from vitzoo.layers.token_merging import Merging, frame_attention_mask, frame_shared_matching
from vitzoo.registry import ENCODERS


class DividedSpaceTimeBlock(TemporalBranchBlock):
    """A ViT block preceded by a temporal attention branch; spatial attention shares one class token per clip."""

    def __init__(self, cfg: VideoConfig, *, drop_path_rate: float = 0.0) -> None:
        super().__init__(cfg, drop_path_rate=drop_path_rate)
        self.temporal_fc = nn.Linear(cfg.embed_dim, cfg.embed_dim)

    @torch.no_grad()
    def init_temporal(self) -> None:
        """Zero ``temporal_fc``; with ``temporal_init="copy"`` also copy the spatial attention and its norm."""
        nn.init.zeros_(self.temporal_fc.weight)
        nn.init.zeros_(self.temporal_fc.bias)
        if self.temporal_init == "copy":
            self.copy_spatial_to_temporal()

    def forward_temporal(self, x: torch.Tensor, num_tubelets: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The temporal branch: ``(B, 1 + T*N, D)`` -> class token ``(B, 1, D)``, patch tokens ``(B, T, N, D)``.

        With token merging no log-size term is needed here: the ``T`` keys at one location share one size."""
        t = num_tubelets
        cls = x[:, :1]  # (B, 1, D)
        patches = rearrange(x[:, 1:], "b (t n) d -> b t n d", t=t)  # (B, T, N, D)
        n = patches.shape[2]

        xt = rearrange(patches, "b t n d -> (b n) t d")  # (B*N, T, D): attend across time at each location
        res = self.temporal_drop_path(self.temporal_attn(self.temporal_norm(xt)))
        res = rearrange(res, "(b n) t d -> b t n d", n=n)  # (B, T, N, D)
        return cls, patches + self.temporal_ls(self.temporal_fc(res))

    def forward(self, x: torch.Tensor, num_tubelets: int) -> torch.Tensor:
        """``(B, 1 + T*N, D)`` (class token, then time-major patch tokens) -> the same shape."""
        t = num_tubelets
        cls, patches = self.forward_temporal(x, t)  # (B, 1, D), (B, T, N, D)

        frame_cls = repeat(cls, "b one d -> (b t) one d", t=t)  # (B*T, 1, D): the class token in every frame
        xs = torch.cat([frame_cls, rearrange(patches, "b t n d -> (b t) n d")], dim=1)  # (B*T, 1 + N, D)
        res = self.drop_path1(self.ls1(self.attn(self.norm1(xs))))
        res = rearrange(res, "(b t) l d -> b t l d", t=t)  # (B, T, 1 + N, D)
        cls = cls + res[:, :, :1].mean(dim=1)  # (B, 1, D): the T class-token updates averaged
        patches = patches + res[:, :, 1:]

        x = torch.cat([cls, rearrange(patches, "b t n d -> b (t n) d")], dim=1)  # (B, 1 + T*N, D)
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))

    def forward_merging(
        self, x: torch.Tensor, size: torch.Tensor | None, r: int, merging: Merging, num_tubelets: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The block with token merging between the spatial attention and the MLP: ``(B, 1 + T*N, D)`` ->
        ``(B, 1 + T*(N - r), D)``, the same ``r`` positions merged in every frame.

        ``size (B, 1 + N, 1)``: tubelets per position (class token first), shared by all frames (None: all 1);
        with ``merging.prop_attn`` its log is added to the spatial attention's logits. Returns the new sizes too.
        """
        t = num_tubelets
        cls, patches = self.forward_temporal(x, t)  # (B, 1, D), (B, T, N, D)

        frame_cls = repeat(cls, "b one d -> (b t) one d", t=t)  # (B*T, 1, D): the class token in every frame
        xs = torch.cat([frame_cls, rearrange(patches, "b t n d -> (b t) n d")], dim=1)  # (B*T, 1 + N, D)
        q, k, v = self.attn.project_qkv(self.norm1(xs))  # (B*T, H, 1 + N, d) each
        mask = frame_attention_mask(size, t, q.dtype) if merging.prop_attn else None  # (B*T, 1, 1, 1 + N)
        res = self.drop_path1(self.ls1(self.attn.project_out(self.attn.attend(q, k, v, mask))))
        res = rearrange(res, "(b t) l d -> b t l d", t=t)  # (B, T, 1 + N, D)
        cls = cls + res[:, :, :1].mean(dim=1)  # (B, 1, D): the T class-token updates averaged
        patches = patches + res[:, :, 1:]

        keys = rearrange(k.mean(dim=1), "(b t) l d -> b t l d", t=t)  # (B, T, 1 + N, d): averaged over heads
        merge = frame_shared_matching(keys, r, merging.num_prefix_tokens) if r > 0 else None
        if merge is not None:
            patches, size = merge(patches, size)  # (B, T, N - r, D), (B, 1 + N - r, 1)
        x = torch.cat([cls, rearrange(patches, "b t n d -> b (t n) d")], dim=1)  # (B, 1 + T*N', D)
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x)))), size


@ENCODERS.register("divided")
class DividedSpaceTimeEncoder(GridMergingEncoder):
    """TimeSformer's encoder (see module docstring): class token, separable positions, divided blocks, norm."""

    vit_init = ViTInit(
        zero=("time_embed",),
        temporal_copy={"temporal_attn": "attn", "temporal_norm": "norm1"},
        block_zero=("temporal_fc",),
    )

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__(cfg)
        if not cfg.class_token:
            raise ValueError("the divided space-time encoder (TimeSformer) needs class_token=True")
        dim = cfg.embed_dim
        t, h, w = self.grid
        self.cls_token = learned_embedding(1, 1, dim)
        self.pos_embed = learned_embedding(1, 1 + h * w, dim)
        self.time_embed = nn.Parameter(torch.zeros(1, t, dim))
        self.pos_drop = nn.Dropout(cfg.pos_drop_rate)
        self.time_drop = nn.Dropout(cfg.pos_drop_rate)
        self.blocks = make_blocks(cfg, block_cls=DividedSpaceTimeBlock)
        self.norm = nn.Identity() if cfg.use_fc_norm else nn.LayerNorm(dim, eps=cfg.norm_eps)
        self.apply(init_vit_weights)
        for blk in self.blocks:  # after the generic init, which would overwrite it
            blk.init_temporal()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Tubelet tokens ``(B, T, h, w, D)`` -> class token and positioned patch tokens ``(B, 1 + T*h*w, D)``."""
        tables = self.tables(tuple(x.shape[1:4]))
        pos_embed = tables.get("pos_embed", self.pos_embed)  # (1, 1 + N, D)
        time_embed = tables.get("time_embed", self.time_embed)  # (1, T, D)
        x = rearrange(x, "b t h w d -> b t (h w) d")  # (B, T, N, D)
        cls = (self.cls_token + pos_embed[:, :1]).expand(x.shape[0], -1, -1)  # (B, 1, D)
        patches = x + pos_embed[:, None, 1:]  # (B, T, N, D)
        cls, patches = self.pos_drop(cls), self.pos_drop(patches)
        patches = self.time_drop(patches + time_embed[:, :, None])  # (B, T, N, D)
        return torch.cat([cls, rearrange(patches, "b t n d -> b (t n) d")], dim=1)  # (B, 1 + T*N, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Token grid ``(B, T, h, w, D)`` -> ``(B, 1 + T*h*w, D)``; with token merging ``(B, 1 + T*N', D)``: the
        same ``N' < h*w`` merged positions in every frame, time-major, each standing for :attr:`token_sizes`
        tubelets (no longer a spatial grid)."""
        t = x.shape[1]
        x = self.embed(x)
        if self.merge_plan is not None:
            return self.norm(self.merge_blocks(x, t, t)[0])  # (B, 1 + T*N', D)
        checkpointing = self.grad_checkpointing and self.training and torch.is_grad_enabled()
        for blk in self.blocks:
            x = torch.utils.checkpoint.checkpoint(blk, x, t, use_reentrant=False) if checkpointing else blk(x, t)
        return self.norm(x)  # (B, 1 + T*N, D)

    def resampled_tables(self, grid: Grid) -> dict[str, torch.Tensor]:
        pe = resample_pos_embed(self.pos_embed, old_grid=self.grid[1:], new_grid=tuple(grid[1:]), num_prefix_tokens=1)
        return {"pos_embed": pe, "time_embed": resample_temporal_pos_embed(self.time_embed, new_len=grid[0])}

    @property
    def num_taps(self) -> int:
        return len(self.blocks)

    def forward_taps(self, x: torch.Tensor, take: set[int], *, norm: bool, stop_at: int | None):
        grid = tuple(x.shape[1:4])
        t = grid[0]
        if self.merge_plan is not None:  # merged tokens form no grid: each tap is (B, T*N_i, D)
            final, kept = self.merge_blocks(self.embed(x), t, t, take=take, stop_at=stop_at)
            return self.norm(final), token_taps(kept, None, 1, self.norm if norm else None)
        final, kept = collect_blocks(
            self.blocks, self.embed(x), take, t, stop_at=stop_at,
            checkpointing=self.grad_checkpointing and self.training,
        )  # fmt: skip
        return self.norm(final), token_taps(kept, grid, 1, self.norm if norm else None)

    @staticmethod
    def flops(cfg: VideoConfig) -> Flops:
        """TimeSformer divided space-time attention (Bertasius et al., 2021), as in its reference code.

        Per block: temporal attention over ``T`` frames at each of ``N`` locations followed by the extra
        ``temporal_fc`` (``D x D``); spatial attention over ``1 + N`` tokens per frame (the class token is
        copied into every frame); the MLP over all ``1 + T*N`` tokens.
        """
        t, h, w = cfg.grid_thw
        n, d = h * w, cfg.embed_dim
        temporal = attention_only_flops(cfg, groups=n, length=t) + Flops(proj=matmul_flops(t * n, d, d))
        spatial = attention_only_flops(cfg, groups=t, length=n + 1)
        mlp = Flops(mlp=2 * matmul_flops(t * n + 1, int(d * cfg.mlp_ratio), d))
        return (temporal + spatial + mlp).scaled(cfg.depth)
