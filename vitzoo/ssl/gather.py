"""All-gather with gradients: negatives from every process for contrastive losses under DDP.

Under ``torchrun`` each process embeds its own ``n`` samples. A contrastive loss wants the embeddings of all
``world_size * n`` samples as negatives, so each rank ``r`` computes its loss ``L_r`` (over its own anchors)
against :func:`all_gather` ``(z) = cat(z_0, ..., z_{W-1})``. The gathered copies of other ranks' embeddings
appear in ``L_r`` too, so the gradient that belongs to rank ``r``'s embeddings is

    dL/dz_r = sum over ranks r' of dL_{r'}/dz_r.

The backward of :func:`all_gather` therefore **sums** the incoming gradient (of the whole gathered tensor)
over ranks with an all-reduce and returns rank ``r``'s slice of the sum. (Returning only the local slice of
the local gradient, as a version of lightly once did, drops every other rank's terms.) Each rank thus holds
the gradient of ``sum_r L_r`` with respect to its own embeddings; DDP then averages parameter gradients over
ranks, which gives the gradient of ``mean_r L_r``, i.e. of the loss one process would compute on the whole
batch (every rank must pass the same ``n``: use ``drop_last=True``).

Outside a process group (or with one process) :func:`all_gather` is the identity. Where this process stands
(:func:`rank`, :func:`world_size`, :func:`is_distributed`) comes from :mod:`vitzoo.train.distributed`.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from vitzoo.train.distributed import is_distributed, rank, world_size

__all__ = ["all_gather", "is_distributed", "rank", "world_size"]  # rank helpers re-exported from train.distributed


class _AllGather(torch.autograd.Function):
    """``(n, ...)`` on each rank -> ``(W * n, ...)`` in rank order; backward: all-reduce sum, own slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.rank, ctx.n = rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)  # (W * n, ...)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()  # (W * n, ...): d L_r / d gathered, on this rank
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)  # d (sum_r L_r) / d gathered, on every rank
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


def _check_equal_sizes(x: torch.Tensor) -> None:
    sizes = [torch.zeros(1, dtype=torch.int64, device=x.device) for _ in range(world_size())]
    dist.all_gather(sizes, torch.tensor([x.shape[0]], dtype=torch.int64, device=x.device))
    found = [int(s) for s in sizes]
    if len(set(found)) > 1:
        raise ValueError(f"all_gather needs the same batch size on every rank, got {found}; use drop_last=True")


def all_gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` ``(n, ...)`` of every rank along dim 0 -> ``(world_size * n, ...)``, rank order.

    Differentiable (see the module docstring for what the backward returns); works for integer tensors such
    as labels too (no gradient). Identity when not distributed.
    """
    if not is_distributed():
        return x
    _check_equal_sizes(x)
    return _AllGather.apply(x)
