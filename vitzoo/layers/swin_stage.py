"""One Swin stage: optional patch merging, then blocks that alternate plain and shifted windows.

The stage builds the two :class:`~vitzoo.layers.windows.WindowPlan` s (plain, shifted) of the grid it receives
once, and keeps them for later calls on the same grid and device (a few grids at most), so masks and
relative-position indices are not rebuilt per block or per forward. While being traced or compiled it builds them
afresh instead (a traced graph must not capture, or leave behind, tensors of another trace).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.utils.checkpoint
from torch import nn

from vitzoo.layers.patch_merging import PatchMerging
from vitzoo.layers.swin_block import SwinBlock
from vitzoo.layers.windows import Grid, WindowPlan, window_plan

CACHED_GRIDS = 8


def _tracing() -> bool:
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


class SwinStage(nn.Module):
    """``downsample`` (:class:`PatchMerging` or identity) then ``blocks``; keys as timm's ``SwinTransformerStage``."""

    def __init__(
        self,
        *,
        in_dim: int,
        dim: int,
        depth: int,
        num_heads: int,
        window: Grid,
        downsample: bool,
        clipped_window_bias: str,
        drop_path_rates: list[float],
        norm_eps: float = 1e-5,
        **block_options,
    ) -> None:
        super().__init__()
        if len(drop_path_rates) != depth:
            raise ValueError(f"{len(drop_path_rates)} stochastic-depth rates for {depth} blocks")
        self.window = tuple(window)
        self.clipped_window_bias = clipped_window_bias
        self.grad_checkpointing = False
        self.downsample = PatchMerging(dim=in_dim, out_dim=dim, norm_eps=norm_eps) if downsample else nn.Identity()
        self.blocks = nn.ModuleList(
            SwinBlock(dim=dim, num_heads=num_heads, window=window, norm_eps=norm_eps, drop_path_rate=r, **block_options)
            for r in drop_path_rates
        )
        self._plans: OrderedDict[tuple, tuple[WindowPlan, WindowPlan]] = OrderedDict()

    def plans(self, grid: Grid, device: torch.device) -> tuple[WindowPlan, WindowPlan]:
        """The plain and the shifted block's plans for ``grid``, cached per grid and device."""
        key = (tuple(grid), str(device))
        if not _tracing() and key in self._plans:
            self._plans.move_to_end(key)
            return self._plans[key]
        plans = tuple(
            window_plan(grid, self.window, shifted=s, clipped=self.clipped_window_bias, device=device)
            for s in (False, True)
        )
        if not _tracing():
            self._plans[key] = plans
            while len(self._plans) > CACHED_GRIDS:
                self._plans.popitem(last=False)
        return plans

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, H, W, C_in)`` -> ``(B, T, H', W', C)`` (``H' = ceil(H/2)`` after patch merging)."""
        x = self.downsample(x)
        plans = self.plans(tuple(int(s) for s in x.shape[1:4]), x.device)  # ints, also when traced
        checkpointing = self.grad_checkpointing and self.training and torch.is_grad_enabled()
        for i, blk in enumerate(self.blocks):
            plan = plans[i % 2]  # odd blocks shift their windows
            if checkpointing:
                x = torch.utils.checkpoint.checkpoint(blk, x, plan, use_reentrant=False)
            else:
                x = blk(x, plan)
        return x
