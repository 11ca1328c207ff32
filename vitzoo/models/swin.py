"""Video Swin Transformer (Liu et al., 2022): ``tubelet stem -> window-attention stages -> norm -> mean -> head``.

Parameter names follow timm's ``SwinTransformer`` (``patch_embed``, ``layers.{i}.downsample``,
``layers.{i}.blocks.{j}``, ``norm``; the head is ``head``), so a 2-D timm Swin maps key for key onto a one-frame
model. The stage layout is data (:class:`~vitzoo.models.swin_config.SwinConfig`); padding, window clipping and
shifting follow torchvision's ``SwinTransformer3d`` (see :mod:`vitzoo.layers.windows`), and
``vitzoo.convert.from_torchvision`` reproduces torchvision's ``swin3d_t/s/b`` exactly.

FLOPs (:meth:`VideoSwin.flops`, every matmul ``2 * M * N * K`` as in :mod:`vitzoo.flops`): the stem; per block
``qkv`` and the output projection on every token of the *padded* grid (padded tokens are computed, as in
torchvision), attention scores and weighted sums within every window (``2 * 2 * nW * N^2 * C``), the MLP on the
unpadded tokens; each patch merging's reduction (``2 * L' * 4C * C'``, counted under ``proj``); the head. Adding
the relative-position bias and the shift mask, norms, softmax and rolls are not counted.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from timm.models._manipulate import MATCH_PREV_GROUP
from torch import nn

from vitzoo.flops import Flops, attention_flops, embed_flops, head_flops, matmul_flops
from vitzoo.layers.block import drop_path_rates
from vitzoo.layers.init import init_vit_weights
from vitzoo.layers.padded_embed import PaddedTubeletEmbed
from vitzoo.layers.swin_stage import SwinStage
from vitzoo.layers.windows import window_geometry
from vitzoo.models.base import NO_WEIGHT_DECAY, Tap, ZooModel, linear_head
from vitzoo.models.swin_config import ImageSwinConfig, SwinConfig, stage_grids, token_grid
from vitzoo.registry import family


@family(SwinConfig)
class VideoSwin(ZooModel):
    """Video Swin on clips ``(B, C, T, H, W)`` of any size; ``forward_features`` gives the final grid's tokens.

    :meth:`forward_intermediates` taps the stages (like timm's Swin): stage ``i`` as ``(B, C_i, T', h_i, w_i)``;
    ``norm=True`` applies the final norm to the last stage only (the other stages have other widths).
    """

    modality = "video"
    no_weight_decay_names = NO_WEIGHT_DECAY | {"relative_position_bias_table"}
    export_fixed_size_reason = (
        "its window plan (padding, clipped windows, shift masks) is computed in Python for each input size"
    )

    def __init__(self, cfg: SwinConfig) -> None:
        super().__init__(cfg)
        self.num_features = cfg.widths[-1]
        self.num_prefix_tokens = 0
        self.global_pool = "avg"
        self.patch_embed = PaddedTubeletEmbed(
            tubelet_size=cfg.tubelet_size,
            patch_size=cfg.patch_size,
            in_chans=cfg.in_chans,
            embed_dim=cfg.embed_dim,
            norm=cfg.patch_norm,
            norm_eps=cfg.norm_eps,
        )
        self.pos_drop = nn.Dropout(cfg.proj_drop_rate)
        rates = drop_path_rates(cfg.drop_path_rate, sum(cfg.depths))
        self.layers = nn.ModuleList()
        for i, (depth, dim, heads) in enumerate(zip(cfg.depths, cfg.widths, cfg.num_heads, strict=True)):
            first = sum(cfg.depths[:i])
            self.layers.append(
                SwinStage(
                    in_dim=cfg.widths[max(i - 1, 0)],
                    dim=dim,
                    depth=depth,
                    num_heads=heads,
                    window=cfg.window_size,
                    downsample=i > 0,
                    clipped_window_bias=cfg.clipped_window_bias,
                    drop_path_rates=rates[first : first + depth],
                    norm_eps=cfg.norm_eps,
                    mlp_ratio=cfg.mlp_ratio,
                    qkv_bias=cfg.qkv_bias,
                    act=cfg.act,
                    attn_drop=cfg.attn_drop_rate,
                    proj_drop=cfg.proj_drop_rate,
                )
            )
        self.norm = nn.LayerNorm(self.num_features, eps=cfg.norm_eps)
        self.fc_norm = nn.Identity()
        self.head_drop = nn.Dropout(cfg.drop_rate)
        self.apply(init_vit_weights)  # trunc-normal linears, zero biases (torchvision's init); tables keep theirs
        self.head = linear_head(self.num_features, cfg.num_classes)

    @torch.no_grad()
    def resample(self, *, num_frames: int | None = None, img_size: int | tuple[int, int] | None = None) -> None:
        """Change the configured input size. Nothing is resampled: Swin has no table that depends on the size."""
        self.cfg.num_frames = self.cfg.num_frames if num_frames is None else num_frames
        self.cfg.img_size = self.cfg.img_size if img_size is None else img_size
        self.cfg.validate()

    # ----------------------------------------------------------------------------------- forward
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Clips ``(B, C, T, H, W)`` -> the final grid's normed tokens ``(B, T' h w, D)``."""
        self.check_input(x)
        x = self.embed(x)  # (B, T', H', W', C)
        for stage in self.layers:
            x = stage(x)  # (B, T', h, w, C_i)
        return self.features_layout(self.norm(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The input batch -> the stem's channels-last grid ``(B, T', H', W', C)``."""
        return self.pos_drop(self.patch_embed(x))

    def features_layout(self, x: torch.Tensor) -> torch.Tensor:
        """A stage's output ``(B, T', h, w, C)`` as :meth:`forward_features` returns it: tokens ``(B, T' h w, C)``."""
        return rearrange(x, "b t h w c -> b (t h w) c")

    def tap_layout(self, x: torch.Tensor) -> torch.Tensor:
        """A stage's output ``(B, T', h, w, C)`` as a tap's channels-last grid (unchanged for video)."""
        return x

    @property
    def interpolation(self) -> str:
        """timm's Swin preprocessing (bicubic) for the one-frame image models; vitzoo's clip evaluation otherwise."""
        return "bicubic" if self._one_frame else "bilinear"

    @property
    def crop_pct(self) -> float:
        return 0.9 if self._one_frame else 1.0

    @property
    def _one_frame(self) -> bool:
        return self.cfg.num_frames == 1 and self.cfg.tubelet_size == 1

    def group_matcher(self, coarse: bool = False) -> dict:
        """timm's layer groups: the stem, then one group per block (per stage with ``coarse``); a stage's patch
        merging joins the previous stage's last block (``vitzoo.train.optim.layer_ids``' rule); norm, head last."""
        if coarse:
            return dict(stem=r"^patch_embed", blocks=r"^layers\.(\d+)")
        blocks = [(r"^layers\.(\d+)\.blocks\.(\d+)", None)]
        for s in range(1, len(self.layers)):
            blocks.append((rf"^layers\.{s}\.", (s - 1, self.cfg.depths[s - 1] - 1, *MATCH_PREV_GROUP)))
        return dict(stem=r"^patch_embed", blocks=blocks)

    @property
    def num_taps(self) -> int:
        return len(self.layers)

    @property
    def feature_info(self) -> list[dict]:
        """One tap per stage: width ``widths[i]``, ``patch_size * 2**i`` pixels per cell (timm's Swin)."""
        cfg = self.cfg
        return [dict(module=f"layers.{i}", num_chs=cfg.widths[i], reduction=cfg.patch_size * 2**i,
                     temporal_reduction=cfg.tubelet_size, axes="thw") for i in range(len(self.layers))]  # fmt: skip

    def prune_taps(self, keep: int) -> None:
        if keep < len(self.layers):
            self.layers = self.layers[:keep]
            self.num_features = self.cfg.widths[keep - 1]
            self.norm = nn.Identity()  # the final norm has the last stage's width

    def forward_taps(
        self, x: torch.Tensor, take: set[int], *, norm: bool, stop_at: int | None
    ) -> tuple[torch.Tensor, list[Tap]]:
        last = len(self.layers) - 1
        x = self.embed(x)  # (B, T', H', W', C)
        taps: list[Tap] = []
        for i, stage in enumerate(self.layers):
            x = stage(x)  # (B, T', h, w, C_i)
            if i in take:
                taps.append((self.tap_layout(self.norm(x) if norm and i == last else x), None))
            if i == stop_at:
                break
        x = self.norm(x) if i == last else x  # stopped early: that stage's tokens, not normed (another width)
        return self.features_layout(x), taps

    # ----------------------------------------------------------------------------------- facts
    @classmethod
    def num_tokens(cls, cfg: SwinConfig) -> int:
        return math.prod(cfg.grid_thw)

    @classmethod
    def flops(cls, cfg: SwinConfig) -> Flops:
        """Analytic forward FLOPs of one clip at the configured size (counting rule: module docstring)."""
        size = (cfg.num_frames, *cfg.img_hw)
        pixels = cfg.in_chans * cfg.tubelet_size * cfg.patch_size**2
        total = embed_flops(tokens=math.prod(token_grid(cfg, size)), dim=cfg.embed_dim, pixels_per_token=pixels)
        for i, grid in enumerate(stage_grids(cfg, size)):
            dim, tokens = cfg.widths[i], math.prod(grid)
            if i > 0:
                total += Flops(proj=matmul_flops(tokens, dim, 4 * cfg.widths[i - 1]))
            for j in range(cfg.depths[i]):
                geo = window_geometry(grid, cfg.window_size, shifted=j % 2 == 1)
                padded = math.prod(geo.padded)
                total += Flops(
                    qkv=matmul_flops(padded, 3 * dim, dim),
                    attention=attention_flops(groups=geo.num_windows, length=geo.window_tokens, dim=dim),
                    proj=matmul_flops(padded, dim, dim),
                    mlp=2 * matmul_flops(tokens, int(dim * cfg.mlp_ratio), dim),
                )
        return total + head_flops(num_features=cfg.widths[-1], num_classes=cfg.num_classes)

    @classmethod
    def architecture(cls, cfg: SwinConfig) -> str:
        return "video_swin"


@family(ImageSwinConfig)
class ImageSwin(VideoSwin):
    """Image Swin (Liu et al., 2021) on images ``(B, C, H, W)``, in timm's layouts: :meth:`forward_features` gives
    the final normed map channels-last ``(B, h, w, C)`` (timm's ``NHWC``; ``forward_head`` averages it), stage taps
    are ``NCHW`` / ``NHWC`` maps. The parameters are a one-frame :class:`VideoSwin`'s, key for key (its patch kernel
    keeps a time axis of 1), so it inflates into a video Swin as before."""

    modality = "image"
    output_fmt = "NHWC"  # timm's attribute: the layout of forward_features

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return super().embed(rearrange(x, "b c h w -> b c 1 h w"))  # (B, 1, H', W', C)

    def features_layout(self, x: torch.Tensor) -> torch.Tensor:
        return rearrange(x, "b 1 h w c -> b h w c")  # (B, h, w, C)

    def tap_layout(self, x: torch.Tensor) -> torch.Tensor:
        return rearrange(x, "b 1 h w c -> b h w c")  # (B, h, w, C)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, h, w, C)`` -> ``(B, C)``: the mean over the map (``""``: unchanged), as timm's Swin head pools."""
        return x if self.global_pool == "" else x.mean(dim=(1, 2))

    @property
    def feature_info(self) -> list[dict]:
        """One tap per stage: width ``widths[i]``, ``patch_size * 2**i`` pixels per cell (timm's Swin)."""
        cfg = self.cfg
        return [dict(module=f"layers.{i}", num_chs=cfg.widths[i], reduction=cfg.patch_size * 2**i)
                for i in range(len(self.layers))]  # fmt: skip

    @classmethod
    def architecture(cls, cfg: SwinConfig) -> str:
        return "swin"
