"""Run by tests/train/test_reliability.py in its own process group (``python -m tests.train.kill_worker OUT``,
with the repository root on ``PYTHONPATH``).

1. Trains ``test_reliability``'s run with 2 DataLoader workers and, after update 1, sends SIGINT to its whole
   process group, as Ctrl-C in a terminal does (the workers get it too): the run stops after that update with a
   checkpoint; prints ``interrupted <step>``.
2. Resumes with a checkpoint after every update and dies (``os._exit(9)``, no cleanup, as ``kill -9``) half-way
   through writing the state file of the checkpoint at update 2, while holding the run directory's lock.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

import vitzoo.durable as durable
from tests.helpers.training import IMAGE_SHAPE, RandomViews
from tests.train.test_reliability import OPTIONS, _task
from vitzoo.train import fit_task


def run(out: str, **options):
    options = {**OPTIONS, "progress": False, "plot": False, **options}
    data, val = RandomViews(4, IMAGE_SHAPE), RandomViews(2, IMAGE_SHAPE, seed=1)
    return fit_task(_task(), data, val_data=val, out_dir=out, **options)


def ctrl_c(state) -> None:
    if state.step == 1:
        os.killpg(os.getpgid(0), signal.SIGINT)


def main(out: str) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    result = run(out, num_workers=2, callbacks=[ctrl_c])
    print("interrupted" if result.interrupted else "not interrupted", result.step, flush=True)

    real_write = durable.write_chunk

    def die_half_way(f, data):
        if ".step_00000002.state.pt" in f.name:
            real_write(f, bytes(data)[: len(data) // 2])
            f.flush()
            os._exit(9)
        return real_write(f, data)

    durable.write_chunk = die_half_way
    run(out, resume=True, save_every=1)
    print("not killed", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
