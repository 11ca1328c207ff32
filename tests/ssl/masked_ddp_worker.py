"""Run by tests/ssl/test_ssl_masked.py as ``python -m torch.distributed.run --nproc_per_node=2 -m
tests.ssl.masked_ddp_worker OUT`` with the repository root on ``PYTHONPATH``: trains the ``videomae`` task on random
clips with :func:`vitzoo.train.fit_task` (DDP wraps the task), then every rank saves its final task weights and
update count to ``<out>/rank<r>.pt``."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from tests.ssl.test_ssl_masked import VIDEO, _samples, _task
from vitzoo.train import fit_task


def main(out: str) -> None:
    task = _task(VIDEO, "videomae")
    seen: list[int] = []
    settings = dict(epochs=1, batch_size=2, lr=1e-3, warmup_epochs=0, log_every=1, progress=False, plot=False)
    fit_task(task, _samples(task, 8), out_dir=out, callbacks=[lambda s: seen.append(s.step)], **settings)
    torch.save({"state_dict": task.state_dict(), "updates": len(seen)}, Path(out) / f"rank{dist.get_rank()}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
