"""Gathered losses equal one process on the whole batch, with gradients that flow back to every rank.

What is compared: with ``W`` ranks of equal batches and the loss ``L`` of one process on the whole batch,

* the mean over ranks of the per-rank losses ``L_r`` equals ``L``;
* the gradient of rank ``r``'s embeddings (after ``L_r.backward()``) equals ``W * dL/dz_r``: the gather's
  backward sums every rank's terms, i.e. it is the gradient of ``sum_r L_r = W L``;
* so after DDP averages parameter gradients over ranks, they equal the one-process gradients exactly.

The threaded check runs the real ``all_gather`` with ``torch.distributed`` replaced by a 2-thread in-process
world (fast, in the default suite, with a negative control: a backward that does not sum across ranks).
The 2-process check runs it under ``torchrun`` with gloo.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest
import torch

import vitzoo.ssl.gather as gather_module
import vitzoo.train.distributed as distributed_module
from tests.helpers import REPO_ROOT
from tests.helpers.ssl_gather_cases import LOSSES, global_batch, linear_layer
from vitzoo.ssl.gather import all_gather

WORKER = "tests.ssl.ssl_gather_worker"  # run as a module: it imports tests.helpers


class ThreadWorld:
    """Just enough of ``torch.distributed`` for ``all_gather``: one thread per rank, collectives by barrier."""

    ReduceOp = SimpleNamespace(SUM="sum")

    def __init__(self, size: int, *, reduce: bool = True) -> None:
        self.size, self.reduce = size, reduce
        self.barrier = threading.Barrier(size, timeout=60)
        self.slots: list = [None] * size
        self.local = threading.local()

    def is_available(self) -> bool:
        return True

    def is_initialized(self) -> bool:
        return True

    def get_world_size(self) -> int:
        return self.size

    def get_rank(self) -> int:
        return self.local.rank

    def _exchange(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        self.barrier.wait()  # previous collective fully read
        self.slots[self.get_rank()] = tensor.detach().clone()
        self.barrier.wait()
        return list(self.slots)

    def all_gather(self, out: list[torch.Tensor], tensor: torch.Tensor) -> None:
        for dst, src in zip(out, self._exchange(tensor), strict=True):
            dst.copy_(src)

    def all_reduce(self, tensor: torch.Tensor, op=None) -> None:
        parts = self._exchange(tensor)
        if self.reduce:  # reduce=False: the bug of a backward that keeps only its own rank's terms
            tensor.copy_(torch.stack(parts).sum(dim=0))

    def run(self, fn) -> list:
        results, errors = [None] * self.size, []

        def target(rank: int) -> None:
            self.local.rank = rank
            try:
                results[rank] = fn(rank)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)
                self.barrier.abort()

        threads = [threading.Thread(target=target, args=(r,)) for r in range(self.size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return results


def use_world(monkeypatch, world: ThreadWorld) -> None:
    """Replace ``torch.distributed`` where the gather's collectives run and where rank and world size are asked."""
    monkeypatch.setattr(gather_module, "dist", world)
    monkeypatch.setattr(distributed_module, "dist", world)


def single_process(name: str) -> dict:
    """Loss and gradients of one process on the whole batch (no gather)."""
    z_all, labels, x_all = global_batch()
    z = z_all.clone().requires_grad_()
    loss = LOSSES[name](z, labels, gather=False)
    loss.backward()
    layer = linear_layer()
    LOSSES[name](layer(x_all), labels, gather=False).backward()
    return {"loss": loss.detach(), "z_grad": z.grad, "param_grads": {k: p.grad for k, p in layer.named_parameters()}}


def per_rank(name: str, rank: int, world: int) -> dict:
    """What one rank computes: its half of the batch, gathered loss, backward (DDP's averaging done by the caller)."""
    z_all, labels_all, x_all = global_batch(world)
    n = z_all.shape[0] // world
    part = slice(rank * n, (rank + 1) * n)
    z = z_all[part].clone().requires_grad_()
    loss = LOSSES[name](z, labels_all[part], gather=True)
    loss.backward()
    layer = linear_layer()
    LOSSES[name](layer(x_all[part]), labels_all[part], gather=True).backward()
    return {"loss": loss.detach(), "z_grad": z.grad, "param_grads": {k: p.grad for k, p in layer.named_parameters()}}


def check_against_single_process(name: str, ranks: list[dict], *, ddp_averaged: bool) -> None:
    world = len(ranks)
    ref = single_process(name)
    torch.testing.assert_close(torch.stack([r["loss"] for r in ranks]).mean(), ref["loss"], rtol=1e-10, atol=1e-12)
    z_grad = torch.cat([r["z_grad"] for r in ranks])  # rank r's rows are its slice of the batch
    torch.testing.assert_close(z_grad, world * ref["z_grad"], rtol=1e-9, atol=1e-12)
    for key, expected in ref["param_grads"].items():
        grads = [r["param_grads"][key] for r in ranks]
        if ddp_averaged:  # DDP already averaged: every rank holds the same gradient
            torch.testing.assert_close(grads[1], grads[0], rtol=0, atol=0)
            averaged = grads[0]
        else:
            averaged = torch.stack(grads).mean(dim=0)  # what DDP's all-reduce would do
        torch.testing.assert_close(averaged, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", list(LOSSES))
def test_threaded_gather_matches_single_process(monkeypatch, name):
    world = ThreadWorld(2)
    use_world(monkeypatch, world)
    ranks = world.run(lambda rank: per_rank(name, rank, 2))
    check_against_single_process(name, ranks, ddp_averaged=False)


def test_threaded_check_catches_a_backward_that_does_not_sum_ranks(monkeypatch):
    world = ThreadWorld(2, reduce=False)
    use_world(monkeypatch, world)
    ranks = world.run(lambda rank: per_rank("ntxent", rank, 2))
    with pytest.raises(AssertionError, match="not close"):
        check_against_single_process("ntxent", ranks, ddp_averaged=False)


def test_gather_is_identity_without_process_group():
    x = torch.randn(3, 4, requires_grad=True)
    assert all_gather(x) is x


def test_unequal_batches_raise(monkeypatch):
    world = ThreadWorld(2)
    use_world(monkeypatch, world)
    with pytest.raises(ValueError, match="same batch size on every rank"):
        world.run(lambda rank: all_gather(torch.zeros(2 + rank, 3)))


@pytest.mark.slow
def test_two_process_gather_matches_single_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        WORKER,
        str(tmp_path),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for name in LOSSES:
        check_against_single_process(name, [r[name] for r in ranks], ddp_averaged=True)
