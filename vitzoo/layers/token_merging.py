"""Token merging (ToMe: Bolya et al., "Token Merging: Your ViT But Faster", ICLR 2023).

Between the attention and the MLP of a block, the ``r`` most similar pairs of tokens are merged, so every later
block (and the MLP of this one) runs on ``r`` fewer tokens:

1. **Bipartite split.** The tokens after the ``P`` prefix tokens (class, distillation, registers; never merged)
   are split into two sets by alternating positions: ``A`` holds the tokens at even positions of the whole
   sequence (prefix counted, as ToMe's code counts them), ``B`` those at odd positions.
2. **Similarity.** The cosine similarity of the attention keys, averaged over heads, between every token of
   ``A`` and every token of ``B``.
3. **Matching.** Each ``A`` token's best ``B`` partner; the ``r`` ``A`` tokens with the most similar partners
   are merged into them.
4. **Merging.** A size-weighted average: ``x_b <- (s_b x_b + sum s_a x_a) / (s_b + sum s_a)`` and
   ``s_b <- s_b + sum s_a``, where ``s`` is the number of input patches a token stands for (1 at first). The new
   sequence is ``[prefix, unmerged A tokens in their order, B tokens]``.

``r`` is capped at half the non-prefix tokens (``|A|``), as in ToMe. **Proportional attention** adds ``log s`` of
each key to the attention logits, so a merged token counts as the tokens it stands for; vitzoo passes it as the
additive float ``attn_mask`` of ``scaled_dot_product_attention`` (on CPU the fused flash kernel still runs, in
forward and backward: see docs/performance.md). The matching runs without gradient; the merge itself is
differentiable, so a model fine-tunes with merging on.

**Frame-shared merging** (:func:`frame_shared_matching`, for encoders whose tokens stay a ``(T, N)`` grid:
TimeSformer, ViViT Models 3 and 4): one matching per clip over the ``N`` spatial positions, on the keys averaged
over the ``T`` frames, applied to every frame, so the same positions merge in every frame and the grid stays
rectangular ``(T, N')``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from einops import rearrange, repeat
from torch import nn

Merge = Callable[[torch.Tensor], torch.Tensor]
FrameMerge = Callable[[torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Merging:
    """What a block stack merges: ``schedule[i]`` tokens after block ``i``'s attention (missing entries: 0),
    with proportional attention or not; the first ``num_prefix_tokens`` tokens are never merged."""

    schedule: tuple[int, ...]
    prop_attn: bool = True
    num_prefix_tokens: int = 0


def merge_schedule(r: int | Sequence[int], depth: int) -> tuple[int, ...]:
    """``r`` tokens per block for an int, or the per-block list padded with zeros to ``depth`` (ToMe's rule).

    Raises ``ValueError`` for a negative value or a list longer than ``depth``.
    """
    schedule = (int(r),) * depth if isinstance(r, int) else tuple(int(v) for v in r)
    if any(v < 0 for v in schedule):
        raise ValueError(f"token_merging={r!r}: tokens merged per block must be >= 0")
    if len(schedule) > depth:
        raise ValueError(f"token_merging={list(schedule)} lists {len(schedule)} blocks; the stack has {depth}")
    return schedule + (0,) * (depth - len(schedule))


def merge_plan(r: int | Sequence[int], depth: int, prop_attn: bool, num_prefix_tokens: int) -> Merging | None:
    """The :class:`Merging` of a ``depth``-block stack for ``r`` (:func:`merge_schedule`), None when nothing merges."""
    schedule = merge_schedule(r, depth)
    return Merging(schedule, prop_attn, num_prefix_tokens) if is_merging(schedule) else None


def decreasing_schedule(total: int, depth: int) -> tuple[int, ...]:
    """A front-loaded ``token_merging`` schedule: ``total`` tokens merged over ``depth`` blocks, ``r`` decreasing
    linearly (shares ``depth, depth - 1, ..., 1``), so later blocks run on fewer tokens than with ToMe's constant
    ``r = total / depth`` for the same final count (faster: docs/performance.md). ToMe's cap (half the non-prefix
    tokens per block) still applies when the blocks run.

    Raises ``ValueError`` for a negative ``total`` or ``depth < 1``.
    """
    if total < 0 or depth < 1:
        raise ValueError(f"decreasing_schedule(total={total}, depth={depth}): need total >= 0 and depth >= 1")
    shares = range(depth, 0, -1)
    schedule = [round(total * share / sum(shares)) for share in shares]
    schedule[0] += total - sum(schedule)  # rounding: exactly ``total`` in all
    return tuple(schedule)


def is_merging(r: int | Sequence[int]) -> bool:
    """Whether ``r`` (an int or a per-block list) merges any token."""
    return any(v > 0 for v in ((r,) if isinstance(r, int) else r))


def bipartite_soft_matching(keys: torch.Tensor, r: int, num_prefix_tokens: int = 0) -> Merge | None:
    """ToMe's matching on ``keys (B, L, d)``: a function merging the ``r`` best-matched ``A`` tokens into ``B``.

    The returned function takes ``(B, L, C)`` and returns ``(B, L - r, C)``: prefix, unmerged ``A`` tokens (in
    their order), ``B`` tokens with the merged ``A`` tokens summed into them. None when nothing is merged.
    """
    p = num_prefix_tokens
    n = keys.shape[1] - p
    r = min(r, n // 2)
    if r <= 0:
        return None
    first_a = p % 2  # A: even positions of the whole sequence
    with torch.no_grad():
        metric = keys[:, p:] / keys[:, p:].norm(dim=-1, keepdim=True)  # (B, n, d)
        scores = metric[:, first_a::2] @ metric[:, 1 - first_a :: 2].transpose(1, 2)  # (B, |A|, |B|)
        best, partner = scores.max(dim=-1)  # (B, |A|) each
        order = best.argsort(dim=-1, descending=True)[..., None]  # (B, |A|, 1)
        src = order[:, :r]  # (B, r, 1): merged A tokens
        unmerged = order[:, r:].sort(dim=1).values  # (B, |A| - r, 1), kept in sequence order
        dst = partner[..., None].gather(1, src)  # (B, r, 1): their B partners

    def merge(x: torch.Tensor) -> torch.Tensor:
        prefix, tokens = x[:, :p], x[:, p:]  # (B, P, C), (B, n, C)
        a, b = tokens[:, first_a::2], tokens[:, 1 - first_a :: 2]
        c = x.shape[-1]
        kept = a.gather(1, unmerged.expand(-1, -1, c))  # (B, |A| - r, C)
        moved = a.gather(1, src.expand(-1, -1, c))  # (B, r, C)
        b = b.scatter_reduce(1, dst.expand(-1, -1, c), moved, reduce="sum")  # (B, |B|, C)
        return torch.cat([prefix, kept, b], dim=1)  # (B, L - r, C)

    return merge


def merge_wavg(merge: Merge, x: torch.Tensor, size: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge ``x (B, L, C)`` as a size-weighted average; ``size (B, L, 1)`` (None: all 1) -> the merged sizes."""
    weighted = torch.cat([x, torch.ones_like(x[..., :1])] if size is None else [x * size, size], dim=-1)
    merged = merge(weighted)  # (B, L - r, C + 1): one matching pass carries the sums and the sizes
    size = merged[..., -1:]
    return merged[..., :-1] / size, size


def frame_shared_matching(keys: torch.Tensor, r: int, num_prefix_tokens: int = 0) -> FrameMerge | None:
    """ToMe's matching once per clip for a ``(T, N)`` token grid: the same positions merge in every frame.

    ``keys (B, T, P + N, d)``: each frame's attention keys averaged over heads (the ``P`` prefix tokens first, never
    merged; they count in the A/B alternation as in :func:`bipartite_soft_matching`), averaged here over frames.
    Returns a function taking the grid tokens ``(B, T, N, C)`` and the sizes ``(B, P + N, 1)`` shared by all
    frames (None: all 1) to their size-weighted merge ``(B, T, N - r, C)`` and new sizes ``(B, P + N - r, 1)``;
    None when nothing is merged.
    """
    merge = bipartite_soft_matching(keys.mean(dim=1), r, num_prefix_tokens)  # matched on (B, P + N, d)
    if merge is None:
        return None
    p = num_prefix_tokens

    def merge_frames(x: torch.Tensor, size: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        t = x.shape[1]
        x = rearrange(x, "b t n c -> b n (t c)")  # (B, N, T*C): one row per position, all frames
        x = F.pad(x, (0, 0, p, 0))  # (B, P + N, T*C): empty prefix rows (kept apart by the merge, then dropped)
        x, size = merge_wavg(merge, x, size)  # (B, P + N - r, T*C), (B, P + N - r, 1)
        return rearrange(x[:, p:], "b n (t c) -> b t n c", t=t), size  # (B, T, N - r, C)

    return merge_frames


def grid_token_sizes(size: torch.Tensor | None, num_frames: int, num_prefix_tokens: int) -> torch.Tensor | None:
    """Frame-shared sizes ``(B, P + N', 1)`` -> the sizes of the flattened tokens ``(B, P + T*N', 1)`` (time-major)."""
    if size is None:
        return None
    p = num_prefix_tokens
    grid = repeat(size[:, p:], "b n one -> b (t n) one", t=num_frames)  # (B, T*N', 1): the same in every frame
    return torch.cat([size[:, :p], grid], dim=1)


def frame_attention_mask(size: torch.Tensor | None, num_frames: int, dtype: torch.dtype) -> torch.Tensor | None:
    """:func:`proportional_attention_mask` for a spatial attention run per frame on ``(B*T, P + N', ...)``: the
    frame-shared sizes ``(B, P + N', 1)`` -> ``(B*T, 1, 1, P + N')`` (None while every size is 1)."""
    if size is None:
        return None
    frames = repeat(size, "b l one -> (b t) l one", t=num_frames)  # (B*T, P + N', 1), frames sample-major
    return proportional_attention_mask(frames, dtype)  # (B*T, 1, 1, P + N')


def proportional_attention_mask(size: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """``log(size)`` of each key as an additive attention mask ``(B, 1, 1, L)`` (None while every size is 1)."""
    if size is None:
        return None
    return size.log().to(dtype)[:, None, None, :, 0]  # (B, 1, 1, L)


def weighted_mean(tokens: torch.Tensor, size: torch.Tensor | None) -> torch.Tensor:
    """``(B, L, D)`` -> ``(B, D)``: the mean over the input patches the tokens stand for (plain mean for None)."""
    if size is None:
        return tokens.mean(dim=1)
    return (tokens * size).sum(dim=1) / size.sum(dim=1)


def run_merging(
    blocks: nn.Sequential,
    x: torch.Tensor,
    merging: Merging,
    *,
    args: tuple = (),
    take: set[int] = frozenset(),
    stop_at: int | None = None,
    checkpointing: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None, list[torch.Tensor]]:
    """Apply ``blocks`` (each with ``forward_merging``, called with ``args`` after the merging ones) as ``merging``
    says.

    Returns the last output, the token sizes ``(B, L', 1)`` (None if nothing was merged) and the outputs of the
    blocks in ``take`` (each with its own, shrinking length). Stops after block ``stop_at`` when given; with
    ``checkpointing`` (and grad enabled) each block is recomputed in backward.
    """
    checkpointing = checkpointing and torch.is_grad_enabled()
    size, kept = None, []
    for i, blk in enumerate(blocks):
        r = merging.schedule[i] if i < len(merging.schedule) else 0
        if checkpointing:
            x, size = torch.utils.checkpoint.checkpoint(
                blk.forward_merging, x, size, r, merging, *args, use_reentrant=False
            )
        else:
            x, size = blk.forward_merging(x, size, r, merging, *args)
        if i in take:
            kept.append(x)
        if i == stop_at:
            break
    return x, size, kept
