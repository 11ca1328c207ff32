"""The encoder contract shared by the plain (non-hierarchical) video encoders.

An encoder takes the tubelet token grid ``(B, T, h, w, D)`` (no positional embedding yet: each encoder owns its
own, since the variants embed position differently) and returns its final tokens ``(B, P + L, D)``: ``P =
num_prefix_tokens`` class tokens, then ``L`` grid tokens flattened ``(t h w)``. The model pools them as the
encoder says (``global_pool``). Variants differ only by which encoder class the config names.

Each encoder declares its facts next to its code: how an image ViT initialises it (``vit_init``), its
analytic FLOPs (``flops``), its position tables and how they are resampled to another token grid
(``resampled_tables``). The grid is read from the input, never recovered from a token count. With
``cfg.dynamic_size`` the tables are interpolated at run time for any grid, exactly as :meth:`resample`
would do permanently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from einops import rearrange
from torch import nn

from vitzoo.config import VideoConfig
from vitzoo.flops import Flops
from vitzoo.layers.token_merging import is_merging
from vitzoo.schema import ConfigError

Grid = tuple[int, int, int]  # (T, h, w) tokens


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


def grid_map(tokens: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Grid tokens ``(B, T*h*w, D)`` (time-major) -> the map ``(B, T, h, w, D)``."""
    t, h, w = grid
    return rearrange(tokens, "b (t h w) d -> b t h w d", t=t, h=h, w=w)


def token_taps(
    kept: list[torch.Tensor], grid: Grid | None, num_prefix_tokens: int, norm: nn.Module | None
) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """Block outputs ``(B, P + T*h*w, D)`` -> ``(map (B, T, h, w, D), prefix (B, P, D) or None)``, normed if asked.

    ``grid=None`` (merged tokens, no grid): the map is the flat tokens ``(B, L', D)``.
    """
    p = num_prefix_tokens
    taps = []
    for tokens in kept:
        tokens = norm(tokens) if norm is not None else tokens
        tap = tokens[:, p:] if grid is None else grid_map(tokens[:, p:], grid)
        taps.append((tap, tokens[:, :p] if p else None))
    return taps


def set_parameter(module: nn.Module, path: str, value: torch.Tensor) -> None:
    """Replace the parameter at dotted ``path`` below ``module`` with a new parameter holding ``value``."""
    *parents, name = path.split(".")
    for part in parents:
        module = getattr(module, part)
    setattr(module, name, nn.Parameter(value))


class VideoEncoder(nn.Module):
    """Base class: the token grid the position tables are built for, dynamic sizes, checkpointing switch."""

    vit_init: ClassVar[ViTInit] = ViTInit()
    pre_norm: ClassVar[bool] = False  # has a LayerNorm before its blocks when cfg.pre_norm (CLIP style)
    # submodules holding a ``blocks`` stack, in the order they run ("" is the encoder itself): the layer groups
    stack_modules: ClassVar[tuple[str, ...]] = ("",)
    # token merging (ToMe): the TokenTransformer that merges, or why the encoder cannot merge (every registered
    # encoder merges: a TokenTransformer stack, or the same positions in every frame, see encoders/grid_merging.py)
    merging_stack: ClassVar[str | None] = None
    merging_refusal: ClassVar[str | None] = "implements no token merging (its blocks have no forward_merging)"

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__()
        if cfg.pre_norm and not self.pre_norm:
            from vitzoo.registry import ENCODERS

            able = sorted(name for name in ENCODERS if ENCODERS.get(name).pre_norm)
            raise ConfigError(
                f"pre_norm=True (a norm before the blocks, CLIP style): the {cfg.encoder!r} encoder has none; "
                f"encoders with one: {able}"
            )
        self.cfg = cfg
        self.grid: Grid = cfg.grid_thw  # the grid the position tables are sized for
        self.grad_checkpointing = False
        self.num_features = cfg.embed_dim
        self.num_prefix_tokens = int(cfg.class_token)
        self.global_pool = cfg.global_pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Token grid ``(B, T, h, w, D)`` -> final tokens ``(B, P + L, D)``."""
        raise NotImplementedError

    def forward_visible(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Token dropping: encode only the tokens ``mask`` ``(B, T*h*w)`` leaves visible (``True`` = masked).
        Encoders that cannot run on a subset of tokens refuse."""
        raise NotImplementedError(
            f"the {self.cfg.encoder!r} encoder cannot run on the visible tokens only (token dropping); use "
            "encoder='joint' (VideoMAE / MAE-ST), or 'fact_enc' under tube masking"
        )

    def set_token_merging(self, r: int | tuple[int, ...], prop_attn: bool = True) -> None:
        """Merge ``r`` tokens per block (ToMe) in the stack :attr:`merging_stack` names (0: off)."""
        if self.merging_stack is None:
            if is_merging(r):
                raise ValueError(f"token_merging={r!r}: the {self.cfg.encoder!r} encoder {self.merging_refusal}")
            return
        self.get_submodule(self.merging_stack).set_token_merging(r, prop_attn)

    @property
    def merging(self) -> bool:
        """Whether token merging is on (the final tokens are then no grid)."""
        return self.merging_stack is not None and self.get_submodule(self.merging_stack).merging is not None

    @property
    def token_sizes(self) -> torch.Tensor | None:
        """Patches per final token ``(B, P + L', 1)`` of the last forward when the final tokens were merged."""
        return None

    # ----------------------------------------------------------------------------------- position tables
    def resampled_tables(self, grid: Grid) -> dict[str, torch.Tensor]:
        """Every position table (dotted parameter path -> tensor) resampled from :attr:`grid` to ``grid``."""
        raise NotImplementedError

    def tables(self, grid: Grid) -> dict[str, torch.Tensor]:
        """Position tables resampled for an input on ``grid`` (``dynamic_size``); empty at the built grid, where
        the parameters themselves are used (callers fall back to them, or pass None to a submodule, so that no
        parameter is ever a module-call argument: hooks such as ``FlopCounterMode``'s fail on those)."""
        if grid == self.grid:
            return {}
        if not self.cfg.dynamic_size:
            raise ValueError(
                f"{type(self).__name__} is built for a {self.grid} token grid, got {grid}; build the model with "
                "dynamic_size=True or call model.resample(num_frames=..., img_size=...)"
            )
        return self.resampled_tables(grid)

    @torch.no_grad()
    def resample(self, grid: Grid) -> None:
        """Permanently resample the position tables to the token grid ``grid = (T, h, w)``."""
        for path, value in self.resampled_tables(grid).items():
            set_parameter(self, path, value.detach().clone())
        self.grid = tuple(grid)

    # ----------------------------------------------------------------------------------- layer groups
    def block_stacks(self) -> list[tuple[str, int]]:
        """``(name prefix, depth)`` of each ``blocks`` stack, in the order they run (default: the encoder's own)."""
        stacks = []
        for name in self.stack_modules:
            module = self.get_submodule(name) if name else self
            stacks.append((f"{name}." if name else "", len(module.blocks)))
        return stacks

    # ----------------------------------------------------------------------------------- intermediates
    def feature_info(self, prefix: str = "") -> list[dict]:
        """timm's ``feature_info`` of the taps (see ``ZooModel.feature_info``): every block of every stack gives a
        space-time map at the tubelet grid."""
        cfg = self.cfg
        return [
            dict(module=f"{prefix}{stack}blocks.{i}", num_chs=self.num_features, reduction=cfg.patch_size,
                 temporal_reduction=cfg.tubelet_size, axes="thw")
            for stack, depth in self.block_stacks()
            for i in range(depth)
        ]  # fmt: skip

    def prune_taps(self, keep: int) -> None:
        """Keep the first ``keep`` blocks, counted over the stacks in the order they run."""
        for name in self.stack_modules:
            module = self.get_submodule(name) if name else self
            module.blocks = module.blocks[: max(keep, 0)]
            keep -= len(module.blocks)

    @property
    def num_taps(self) -> int:
        """How many blocks :meth:`forward_taps` can return."""
        raise NotImplementedError

    def forward_taps(
        self, x: torch.Tensor, take: set[int], *, norm: bool, stop_at: int | None
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor | None]]]:
        """Final tokens and, for each block in ``take``, its output as a map ``(B, T, h, w, D)`` with its prefix."""
        raise NotImplementedError

    # ----------------------------------------------------------------------------------- facts
    @staticmethod
    def flops(cfg: VideoConfig) -> Flops:
        """Analytic forward FLOPs of the encoder on one clip (embedding and head excluded)."""
        raise NotImplementedError
