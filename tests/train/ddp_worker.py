"""Run by tests/train/test_distributed.py under ``python -m torch.distributed.run --nproc_per_node=2``.

Trains the nano model on random clips with :func:`vitzoo.train.fit`, unchanged from single-process use;
rank 0 then saves the final weights and the number of samples each rank saw to ``<out>/result.pt``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
from helpers import RandomClips, nano_model  # noqa: E402

from vitzoo.train import fit  # noqa: E402


def main(out: str) -> None:
    model = nano_model()
    train_set = RandomClips(16, model.input_shape, 4)
    val_set = RandomClips(5, model.input_shape, 4, views=2, seed=1)
    seen: list[int] = []
    fit(
        model,
        train_set,
        val_set=val_set,
        out_dir=out,
        epochs=1,
        batch_size=2,
        lr=1e-3,
        warmup_epochs=0,
        log_every=1,
        progress=False,
        plot=False,
        callbacks=[lambda state: seen.append(state.step)],
    )
    counts = [None] * dist.get_world_size()
    dist.all_gather_object(counts, len(seen))
    if dist.get_rank() == 0:
        torch.save({"state_dict": model.state_dict(), "updates": counts}, Path(out) / "result.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
