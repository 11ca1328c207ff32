"""Token dropping: the visible tokens of a masked grid, gathered with one index op (no loop over samples).

A mask is ``(B, L)`` bool over the grid tokens, ``True`` = masked (transformers' ``bool_masked_pos``); every
sample must mask the same number of tokens (as VideoMAE requires), so the visible ones form a ``(B, L_v, D)``
tensor. Visible and masked tokens keep their grid order (ascending), as boolean indexing would give them.
"""

from __future__ import annotations

import torch


def split_mask(mask: torch.Tensor, num_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Grid indices of the visible ``(B, L_v)`` and of the masked ``(B, L - L_v)`` tokens, each ascending.

    Raises ``ValueError`` (one line) for a mask that is not ``(B, num_tokens)`` bool or whose samples mask different
    numbers of tokens.
    """
    if mask.dtype != torch.bool or mask.ndim != 2 or mask.shape[1] != num_tokens:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} and dtype {mask.dtype}: expected (B, {num_tokens}) bool over the "
            "token grid (True = masked)"
        )
    counts = mask.sum(dim=1)
    if mask.shape[0] and bool((counts != counts[0]).any()):
        raise ValueError(
            f"mask hides {sorted(set(counts.tolist()))} tokens in different samples; every sample must hide the "
            "same number (draw masks with one vitzoo.data.masking generator)"
        )
    num_visible = num_tokens - (int(counts[0]) if mask.shape[0] else 0)
    order = torch.argsort(mask.to(torch.uint8), dim=1, stable=True)  # (B, L): visible first, then masked
    return order[:, :num_visible], order[:, num_visible:]


def gather_tokens(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[b, index[b]]`` for every sample in one gather: ``(B, L, D)``, ``(B, K)`` -> ``(B, K, D)``.

    ``x`` may have a batch of 1 (a position table), broadcast over the batch of ``index``.
    """
    if x.shape[0] == 1 and index.shape[0] != 1:
        return x[0][index]  # (B, K, D): one index op on the shared table
    return torch.gather(x, 1, index[..., None].expand(-1, -1, x.shape[-1]))  # (B, K, D)
