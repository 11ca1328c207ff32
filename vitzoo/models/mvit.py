"""Multiscale Vision Transformers for video: MViTv1 (Fan et al., 2021) and MViTv2 (Li et al., 2022).

``ConvStem -> [class token] + [absolute positions] -> stages of MultiscaleBlocks -> norm -> pooling -> head``.
The token grid shrinks stage by stage (query pooling) while the width grows, so the model is hierarchical:
:meth:`MViT.forward_intermediates` taps the output of every stage (as timm does for its MViTv2).

Position information is either absolute (MViTv1: separable spatial, temporal and class tables added after the
stem) or relative (MViTv2: decomposed tables in every attention layer). Both are sized for the configured input;
``dynamic_size=True`` interpolates them at run time for another clip length or frame size exactly as
:meth:`MViT.resample` does permanently: spatial absolute tables bicubically (timm's resampling), temporal ones and
the relative tables linearly (torchvision's and timm's). The relative tables' lengths for a new size follow
torchvision's construction rule (:func:`~vitzoo.models.mvit_config.rel_pos_lengths`), which needs every block's
grid to keep at least one token: MViTv2 takes a frame whose longer side is at least
:meth:`MViT.input_size_rule`'s ``min_longer_side`` (8 px for the nano model, 32 px for the small and base ones);
a smaller one is refused in one line naming the sizes that work.

Parameter names follow timm's MViTv2 (``patch_embed.proj``, ``stages.{s}.blocks.{j}.attn.qkv``, ...);
``vitzoo.convert.from_torchvision`` maps torchvision's ``mvit_v1_b`` / ``mvit_v2_s`` exactly.
"""

from __future__ import annotations

import math

import torch
import torch.utils.checkpoint
from torch import nn

from vitzoo.config import pair
from vitzoo.encoders.base import grid_map, set_parameter
from vitzoo.flops import Flops
from vitzoo.layers.block import drop_path_rates
from vitzoo.layers.conv_stem import ConvStem
from vitzoo.layers.init import init_vit_weights
from vitzoo.layers.multiscale_block import MultiscaleBlock
from vitzoo.layers.pos_embed import learned_embedding, resample_pos_embed, resample_temporal_pos_embed
from vitzoo.layers.rel_pos import RelPosIndex, resize_table
from vitzoo.models.base import NO_WEIGHT_DECAY, Tap, ZooModel
from vitzoo.models.mvit_config import MViTConfig, Triple, block_specs, rel_pos_lengths, stem_grid
from vitzoo.models.mvit_flops import mvit_flops
from vitzoo.registry import family

ABSOLUTE_TABLES = ("pos_embed_spatial", "pos_embed_temporal", "pos_embed_class")
RELATIVE_TABLES = ("rel_pos_t", "rel_pos_h", "rel_pos_w")


class MViTStage(nn.Module):
    """The blocks of one stage (``blocks.{j}``), run in order on ``(tokens, grid)``."""

    def __init__(self, blocks: list[MultiscaleBlock]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)


@family(MViTConfig)
class MViT(ZooModel):
    """A Multiscale Vision Transformer on clips ``(B, C, T, H, W)`` (see the module docstring)."""

    modality = "video"
    no_weight_decay_names = NO_WEIGHT_DECAY | set(ABSOLUTE_TABLES) | set(RELATIVE_TABLES)

    def __init__(self, cfg: MViTConfig) -> None:
        super().__init__(cfg)
        dim = cfg.widths[0]
        self.num_prefix_tokens = p = int(cfg.class_token)
        self.global_pool = cfg.global_pool
        self.num_features = cfg.widths[-1]
        self.grad_checkpointing = False
        self.grid: Triple = cfg.grid_thw  # the stem grid the position tables are sized for
        self.patch_embed = ConvStem(
            in_chans=cfg.in_chans, embed_dim=dim, kernel=cfg.patch_kernel, stride=cfg.patch_stride,
            padding=cfg.patch_padding,
        )  # fmt: skip
        self.cls_token = learned_embedding(1, 1, dim) if cfg.class_token else None
        t, h, w = self.grid
        absolute = not cfg.rel_pos
        self.pos_embed_spatial = learned_embedding(1, h * w, dim) if absolute else None
        self.pos_embed_temporal = learned_embedding(1, t, dim) if absolute else None
        self.pos_embed_class = learned_embedding(1, 1, dim) if absolute and p else None
        self.rel_index = RelPosIndex()  # distance tables shared by every block, built once per grid pair
        specs = block_specs(cfg)
        lengths = rel_pos_lengths(cfg, self.grid) if cfg.rel_pos else [None] * len(specs)
        blocks: list[list[MultiscaleBlock]] = [[] for _ in cfg.depths]
        for spec, rel_pos, rate in zip(specs, lengths, drop_path_rates(cfg.drop_path_rate, len(specs)), strict=True):
            blocks[spec.stage].append(
                MultiscaleBlock(
                    dim=spec.dim,
                    dim_out=spec.dim_out,
                    num_heads=spec.num_heads,
                    expand_in_attention=cfg.expand_in_attention,
                    stride_q=spec.stride_q,
                    mlp_ratio=cfg.mlp_ratio,
                    norm_eps=cfg.norm_eps,
                    proj_drop=cfg.proj_drop_rate,
                    attn_drop=cfg.attn_drop_rate,
                    drop_path_rate=rate,
                    rel_index=self.rel_index,
                    kernel_q=spec.kernel_q,
                    kernel_kv=spec.kernel_kv,
                    stride_kv=spec.stride_kv,
                    rel_pos=rel_pos,
                    residual_pool=cfg.residual_pool,
                    residual_with_cls=cfg.residual_with_cls,
                    num_prefix_tokens=p,
                    qkv_bias=cfg.qkv_bias,
                )
            )
        self.stages = nn.ModuleList(MViTStage(b) for b in blocks)
        self.block_paths = [f"stages.{s}.blocks.{j}.attn" for s, b in enumerate(blocks) for j in range(len(b))]
        self.norm = nn.LayerNorm(self.num_features, eps=cfg.norm_eps)
        self.fc_norm = nn.Identity()
        self.head_drop = nn.Dropout(cfg.drop_rate)
        self.head = nn.Linear(self.num_features, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        self.apply(init_vit_weights)  # linear layers and norms; tables and convolutions keep their own init

    # ----------------------------------------------------------------------------------- sizes and tables
    def size_multiple(self) -> Triple:
        return tuple(self.cfg.patch_stride)

    def fits(self, sizes: Triple) -> bool:
        """Whether a clip of ``sizes`` ``(frames, height, width)`` (multiples of :meth:`size_multiple`) leaves
        every block a token to pool: always with absolute positions; with relative ones (MViTv2), when every
        block's relative tables have a length (:func:`~vitzoo.models.mvit_config.rel_pos_lengths`)."""
        if not self.cfg.rel_pos:
            return True
        grid = stem_grid(self.cfg, sizes[0], tuple(sizes[1:]))
        return all(spatial >= 1 and temporal >= 1 for spatial, temporal in rel_pos_lengths(self.cfg, grid))

    def input_size_rule(self) -> dict[str, list[int] | int]:
        """The clip sizes ``(frames, height, width)`` this model takes with ``dynamic_size=True``: multiples of
        ``multiple``, at least ``minimum`` on each axis and ``min_longer_side`` on the longer side of the frame
        (what export records, so that an exported graph refuses what the model refuses)."""
        multiple = self.size_multiple()
        frames, side = multiple[0], multiple[1]
        while not self.fits((frames, side, side)) and side < 64 * 1024:
            side += multiple[1]
        while not self.fits((frames, side, side)) and frames < 64 * 1024:
            frames += multiple[0]
        return {"multiple": list(multiple), "minimum": [frames, multiple[1], multiple[2]], "min_longer_side": side}

    def check_input(self, x: torch.Tensor) -> None:
        """:meth:`ZooModel.check_input`, and one line naming the sizes that work for a clip too small for the
        relative positions (see the module docstring)."""
        super().check_input(x)
        sizes = tuple(x.shape[2:])
        tracing = torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing()
        if self.cfg.dynamic_size and not tracing and not self.fits(sizes):
            raise ValueError(f"input sizes {sizes} are too small for {self.size_rule_text()}")

    def size_rule_text(self) -> str:
        """``"mvitv2_... : clips of T >= 2 frames, ..."``: :meth:`input_size_rule` in words."""
        rule = self.input_size_rule()
        name = getattr(self, "arch_name", "") or type(self).__name__
        return (
            f"{name} (relative positions): it takes clips (T, H, W) in multiples of {tuple(rule['multiple'])} with "
            f"T >= {rule['minimum'][0]} and max(H, W) >= {rule['min_longer_side']} px"
        )

    def resampled_tables(self, grid: Triple) -> dict[str, torch.Tensor]:
        """Every position table (dotted parameter path -> tensor) resampled from :attr:`grid` to ``grid``."""
        if self.cfg.rel_pos:
            out = {}
            for path, (spatial, temporal) in zip(self.block_paths, rel_pos_lengths(self.cfg, grid), strict=True):
                attn = self.get_submodule(path)
                out[f"{path}.rel_pos_t"] = resize_table(attn.rel_pos_t, temporal)
                out[f"{path}.rel_pos_h"] = resize_table(attn.rel_pos_h, spatial)
                out[f"{path}.rel_pos_w"] = resize_table(attn.rel_pos_w, spatial)
            return out
        (_, h, w), (t_new, h_new, w_new) = self.grid, grid
        spatial = resample_pos_embed(self.pos_embed_spatial, old_grid=(h, w), new_grid=(h_new, w_new))
        temporal = resample_temporal_pos_embed(self.pos_embed_temporal, new_len=t_new)
        return {"pos_embed_spatial": spatial, "pos_embed_temporal": temporal}

    def tables(self, grid: Triple) -> dict[str, torch.Tensor]:
        """Position tables for an input on stem grid ``grid``: empty at the built grid (the parameters are used)."""
        if grid == self.grid:
            return {}
        if not self.cfg.dynamic_size:
            raise ValueError(
                f"MViT is built for a {self.grid} token grid, got {grid}; build the model with dynamic_size=True "
                "or call model.resample(num_frames=..., img_size=...)"
            )
        return self.resampled_tables(grid)

    @torch.no_grad()
    def resample(self, *, num_frames: int | None = None, img_size: int | tuple[int, int] | None = None) -> None:
        """Permanently adapt the position tables to a new clip length and/or frame size."""
        cfg = self.cfg
        num_frames = cfg.num_frames if num_frames is None else num_frames
        img_size = cfg.img_size if img_size is None else img_size
        sizes = (num_frames, *pair(img_size))
        if any(s < m or s % m for s, m in zip(sizes, cfg.patch_stride, strict=True)):
            raise ValueError(f"{num_frames} frames at {sizes[1]}x{sizes[2]} px are not multiples of {cfg.patch_stride}")
        if not self.fits(sizes):
            raise ValueError(
                f"{num_frames} frames at {sizes[1]}x{sizes[2]} px are too small for {self.size_rule_text()}"
            )
        grid = stem_grid(cfg, num_frames, pair(img_size))
        for path, value in self.resampled_tables(grid).items():
            set_parameter(self, path, value.detach().clone())
        self.grid = grid
        cfg.num_frames, cfg.img_size = num_frames, img_size

    # ----------------------------------------------------------------------------------- forward
    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, Triple, dict[str, torch.Tensor]]:
        """Clips -> tokens ``(B, P + T*h*w, D)`` with the class token and absolute positions, the stem grid and
        the position tables to use for it."""
        x, grid = self.patch_embed(x)  # (B, T*h*w, D)
        tables = self.tables(grid)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1 + T*h*w, D)
        if self.pos_embed_spatial is not None:
            x = x + self._absolute_positions(grid, tables)
        return x, grid, tables

    def _absolute_positions(self, grid: Triple, tables: dict[str, torch.Tensor]) -> torch.Tensor:
        """MViTv1's separable table ``(1, P + T*h*w, D)``: ``temporal[t] + spatial[h, w]``, then the class entry."""
        t, hw = grid[0], grid[1] * grid[2]
        spatial = tables.get("pos_embed_spatial", self.pos_embed_spatial)  # (1, h*w, D)
        temporal = tables.get("pos_embed_temporal", self.pos_embed_temporal)  # (1, T, D)
        pos = (temporal[:, :, None] + spatial[:, None]).reshape(1, t * hw, -1)  # (1, T*h*w, D)
        return torch.cat([self.pos_embed_class, pos], dim=1) if self.pos_embed_class is not None else pos

    def _rel_tables(self, index: int, tables: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...] | None:
        if not tables or not self.cfg.rel_pos:
            return None
        path = self.block_paths[index]
        return tuple(tables[f"{path}.{name}"] for name in RELATIVE_TABLES)

    def _run_stage(
        self, s: int, first: int, x: torch.Tensor, grid: Triple, tables: dict
    ) -> tuple[torch.Tensor, Triple]:
        """Stage ``s`` (whose first block is block ``first`` of the model) on ``(tokens, grid)``."""
        checkpointing = self.grad_checkpointing and self.training and torch.is_grad_enabled()
        for j, blk in enumerate(self.stages[s].blocks):
            rel = self._rel_tables(first + j, tables)
            if checkpointing:
                x, grid = torch.utils.checkpoint.checkpoint(blk, x, grid, rel, use_reentrant=False)
            else:
                x, grid = blk(x, grid, rel)
        return x, grid

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Clips ``(B, C, T, H, W)`` -> normalised tokens ``(B, P + L, D)`` of the last stage's grid."""
        self.check_input(x)
        x, grid, tables = self.embed(x)
        first = 0
        for s, stage in enumerate(self.stages):
            x, grid = self._run_stage(s, first, x, grid, tables)
            first += len(stage.blocks)
        return self.norm(x)

    def group_matcher(self, coarse: bool = False) -> dict:
        """timm's layer groups: the stem (convolution, class token, absolute tables), one group per block (per
        stage with ``coarse``), then norm and head."""
        blocks = r"^stages\.(\d+)" if coarse else r"^stages\.(\d+)\.blocks\.(\d+)"
        return dict(stem=r"^patch_embed|^cls_token|^pos_embed", blocks=blocks)

    @property
    def num_taps(self) -> int:
        return len(self.stages)

    @property
    def feature_info(self) -> list[dict]:
        """One tap per stage: its last block's width and the strides of the stem and the query pooling so far."""
        cfg, info = self.cfg, []
        stride = list(cfg.patch_stride)  # (t, h, w) input steps per token
        specs = block_specs(cfg)
        for s in range(len(self.stages)):
            stage = [spec for spec in specs if spec.stage == s]
            for spec in stage:
                stride = [a * b for a, b in zip(stride, spec.stride_q, strict=True)]
            info.append(dict(module=f"stages.{s}", num_chs=stage[-1].dim_out, reduction=stride[1],
                             temporal_reduction=stride[0], axes="thw"))  # fmt: skip
        return info

    def prune_taps(self, keep: int) -> None:
        if keep < len(self.stages):
            self.stages = self.stages[:keep]
            self.num_features = self.feature_info[-1]["num_chs"]
            self.norm = nn.Identity()  # the final norm has the last stage's width

    def forward_taps(
        self, x: torch.Tensor, take: set[int], *, norm: bool, stop_at: int | None
    ) -> tuple[torch.Tensor, list[Tap]]:
        """Stage outputs as maps ``(B, T, h, w, C_s)``; ``norm`` applies the final norm to the last stage's only
        (the other stages have other widths, as in timm)."""
        x, grid, tables = self.embed(x)
        p, last = self.num_prefix_tokens, len(self.stages) - 1
        taps, first = [], 0
        for s, stage in enumerate(self.stages):
            x, grid = self._run_stage(s, first, x, grid, tables)
            first += len(stage.blocks)
            if s in take:
                tokens = self.norm(x) if norm and s == last else x
                taps.append((grid_map(tokens[:, p:], grid), tokens[:, :p] if p else None))
            if s == stop_at:
                break
        return (self.norm(x) if s == last else x), taps

    # ----------------------------------------------------------------------------------- facts
    @classmethod
    def num_tokens(cls, cfg: MViTConfig) -> int:
        return math.prod(cfg.grid_thw)

    @classmethod
    def flops(cls, cfg: MViTConfig) -> Flops:
        return mvit_flops(cfg)

    @classmethod
    def architecture(cls, cfg: MViTConfig) -> str:
        return "mvit"
