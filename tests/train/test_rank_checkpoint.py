"""Every rank reports the checkpoint rank 0 writes (the interrupted-run line said ``checkpoint None`` on rank 1)."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

import vitzoo
from tests.helpers.training import IMAGE_NANO, IMAGE_SHAPE
from vitzoo.ssl import build_method
from vitzoo.train.config import train_config
from vitzoo.train.distributed import DistInfo
from vitzoo.train.engine import Engine


def test_a_rank_other_than_0_names_the_checkpoint_rank_0_writes(tmp_path):
    task = build_method("simsiam", vitzoo.create(IMAGE_NANO, num_classes=0, depth=1), proj_hidden_dim=8,
                        proj_out_dim=8, pred_hidden_dim=8)  # fmt: skip
    data = TensorDataset(torch.randn(4, 2, *IMAGE_SHAPE), torch.zeros(4, dtype=torch.long))
    engine = Engine(task, data, cfg=train_config(batch_size=2, progress=False), out_dir=tmp_path)
    engine.info = DistInfo(rank=1, world_size=2)  # as rank 1 sees it (rank 0 writes the files)
    engine.state.step = 3
    engine.save(gather=False)
    assert engine.last_checkpoint == tmp_path / "checkpoints" / "step_00000003.state.pt"
    assert not engine.last_checkpoint.exists()  # rank 1 wrote nothing
