"""Token merging for the encoders whose tokens stay a ``(T, N)`` grid: TimeSformer, ViViT Models 3 and 4.

Every block of such an encoder regroups its tokens into frames (spatial attention) and locations (temporal
attention), so merging keeps the grid rectangular: in each block one matching per clip, on the spatial attention's
keys averaged over heads and frames, merges the same positions in every frame
(:func:`~vitzoo.layers.token_merging.frame_shared_matching`). The sizes ``(B, P + N', 1)`` are shared by all
frames; the spatial attention adds their log to its logits (proportional attention). The temporal attention needs
no such term: the ``T`` keys at one location have the same size, and a constant added to every logit of a softmax
leaves it unchanged.
"""

from __future__ import annotations

import torch

from vitzoo.config import VideoConfig
from vitzoo.encoders.base import VideoEncoder
from vitzoo.layers.token_merging import Merging, grid_token_sizes, merge_plan, run_merging


class GridMergingEncoder(VideoEncoder):
    """An encoder whose ``blocks`` each have ``forward_merging(x, size, r, merging, *args)`` merging the same
    positions in every frame (``size``: the frame-shared sizes ``(B, P + N, 1)``, None before any merge)."""

    merging_refusal = None

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__(cfg)
        self.merge_plan: Merging | None = None  # token merging (ToMe), off
        self._token_sizes: torch.Tensor | None = None  # (B, P + T*N', 1) of the last merged forward

    def set_token_merging(self, r: int | tuple[int, ...], prop_attn: bool = True) -> None:
        """Merge ``r`` positions per block (an int or a per-block list; 0: off) in every frame."""
        self.merge_plan = merge_plan(r, len(self.blocks), prop_attn, self.num_prefix_tokens)
        self._token_sizes = None

    @property
    def merging(self) -> bool:
        return self.merge_plan is not None

    @property
    def token_sizes(self) -> torch.Tensor | None:
        """Tubelets per final token ``(B, P + T*N', 1)`` (the frame-shared sizes repeated over the frames)."""
        return self._token_sizes if self.merge_plan is not None else None

    def merge_blocks(
        self, x: torch.Tensor, num_frames: int, *args, take: set[int] = frozenset(), stop_at: int | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The blocks with merging on (``args`` passed on to each block): the last output and the outputs of the
        blocks in ``take``; keeps the final token sizes for :attr:`token_sizes`."""
        checkpointing = self.grad_checkpointing and self.training
        x, size, kept = run_merging(
            self.blocks, x, self.merge_plan, args=args, take=take, stop_at=stop_at, checkpointing=checkpointing
        )
        self._token_sizes = grid_token_sizes(size, num_frames, self.num_prefix_tokens)
        return x, kept
