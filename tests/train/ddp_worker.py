"""Run by tests/train/test_distributed.py as ``python -m torch.distributed.run --nproc_per_node=2 -m
tests.train.ddp_worker OUT KIND`` with the repository root on ``PYTHONPATH``.

``classification``: trains the nano model on random clips with :func:`vitzoo.train.fit`, unchanged from
single-process use. ``label_free``: trains ``TwoViewConsistency`` (projection head, momentum target
network without gradients) with :func:`vitzoo.train.fit_task`. Rank 0 then saves the final weights (of the whole
task for ``label_free``) and the number of updates each rank made to ``<out>/result.pt``. ``stall``: rank 1 stops
responding after update 1 (sleeps for 10 minutes) in a run with ``dist_timeout_s=5``; rank 0 must fail instead of
waiting for it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

from tests.helpers.training import IMAGE_SHAPE, RandomClips, RandomViews, label_free_task, nano_model
from vitzoo.train import fit, fit_task

COMMON = dict(epochs=1, batch_size=2, lr=1e-3, warmup_epochs=0, log_every=1, progress=False, plot=False)


def main(out: str, kind: str) -> None:
    seen: list[int] = []
    callbacks = [lambda state: seen.append(state.step)]
    if kind == "classification":
        model = nano_model()
        train_set = RandomClips(16, model.input_shape, 4)
        val_set = RandomClips(5, model.input_shape, 4, views=2, seed=1)
        fit(model, train_set, val_set=val_set, out_dir=out, callbacks=callbacks, **COMMON)
        weights = model.state_dict()
    elif kind == "stall":
        model = nano_model()

        def stall(state) -> None:
            if state.step == 1 and dist.get_rank() == 1:
                time.sleep(600)

        fit(model, RandomClips(16, model.input_shape, 4), out_dir=out, callbacks=[stall], dist_timeout_s=5, **COMMON)
        return
    else:
        task = label_free_task()
        val = RandomViews(3, IMAGE_SHAPE, seed=1)
        fit_task(task, RandomViews(16, IMAGE_SHAPE), val_data=val, out_dir=out, callbacks=callbacks, **COMMON)
        weights = task.state_dict()
    counts = [None] * dist.get_world_size()
    dist.all_gather_object(counts, len(seen))
    if dist.get_rank() == 0:
        torch.save({"state_dict": weights, "updates": counts}, Path(out) / "result.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
