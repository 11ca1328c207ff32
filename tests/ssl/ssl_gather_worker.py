"""Run by tests/ssl/test_ssl_gather.py as ``python -m torch.distributed.run --nproc_per_node=2 -m
tests.ssl.ssl_gather_worker OUT`` (gloo, CPU) with the repository root on ``PYTHONPATH``.

Every rank builds the same global batch, takes its half, computes each gathered loss on it and backpropagates;
it saves its losses, the gradients of its embeddings, and the gradients of a DDP-wrapped linear layer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from tests.helpers.ssl_gather_cases import LOSSES, global_batch, linear_layer


def main(out: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    result = {}
    for name, loss_fn in LOSSES.items():
        z_all, labels_all, x_all = global_batch(world)
        n = z_all.shape[0] // world
        z = z_all[rank * n : (rank + 1) * n].clone().requires_grad_()
        loss = loss_fn(z, labels_all[rank * n : (rank + 1) * n], gather=True)
        loss.backward()
        ddp = DistributedDataParallel(linear_layer())
        projected = ddp(x_all[rank * n : (rank + 1) * n])  # (n, V, P)
        loss_fn(projected, labels_all[rank * n : (rank + 1) * n], gather=True).backward()
        result[name] = {
            "loss": loss.detach(),
            "z_grad": z.grad,
            "param_grads": {k: p.grad for k, p in ddp.module.named_parameters()},
        }
    torch.save(result, Path(out) / f"rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
