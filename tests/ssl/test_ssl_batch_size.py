"""A batch a method cannot train with is refused before the first step, in one line naming the method, the batch
and the minimum (contrastive losses need negatives, VICReg a variance, BatchNorm layers two samples per process),
and a run that stopped before its first update does not block a fresh start."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

import vitzoo
from tests.helpers.ssl_inputs import IMAGE_BACKBONE
from vitzoo.schema import ConfigError
from vitzoo.ssl import build_method
from vitzoo.train import fit_task

SMALL = {"proj_hidden_dim": 8, "proj_out_dim": 8}
OPTIONS = {
    "simclr": SMALL,
    "supcon": SMALL,
    "byol": {**SMALL, "pred_hidden_dim": 8},
    "simsiam": {**SMALL, "pred_hidden_dim": 8},
    "vicreg": {"expander_dim": 8},
}
MINIMUM = {  # what each message names as the reason
    "simclr": "NT-Xent",
    "supcon": "SupCon loss",
    "byol": "BatchNorm",
    "simsiam": "BatchNorm",
    "vicreg": "VICReg",
}


def _method(name):
    return build_method(name, vitzoo.create(IMAGE_BACKBONE, num_classes=0, depth=1), **OPTIONS[name])


def _data(n=4):
    return TensorDataset(torch.randn(n, 2, 3, 32, 32), torch.zeros(n, dtype=torch.long))  # (N, V, C, H, W)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_a_batch_of_one_is_refused_before_any_step(name, tmp_path):
    with pytest.raises(ConfigError) as error:
        fit_task(_method(name), _data(), out_dir=tmp_path, epochs=1, batch_size=1, progress=False, plot=False)
    message = str(error.value)
    assert "\n" not in message and "train.batch_size=1" in message and "set train.batch_size >= 2" in message
    assert MINIMUM[name] in message
    assert not list(tmp_path.glob("checkpoints/step_*"))  # nothing that would block the next run


def test_distributed_batches_count_for_a_gathering_loss_not_for_batch_norm():
    _method("simclr").check_batch_size(1, world_size=2)  # NT-Xent gathers its negatives from every process
    with pytest.raises(ConfigError, match="at least 2 samples per batch per process"):
        build_method("simclr", vitzoo.create(IMAGE_BACKBONE, num_classes=0, depth=1), gather_distributed=False,
                     **SMALL).check_batch_size(1, world_size=2)  # fmt: skip
    with pytest.raises(ConfigError, match="BatchNorm layers .* at least 2 samples per process"):
        _method("byol").check_batch_size(1, world_size=8)
    _method("byol").check_batch_size(2, world_size=1)


@pytest.mark.slow  # ~3 s: one short run
def test_a_run_stopped_before_its_first_update_does_not_block_a_fresh_start(tmp_path):
    def failing(batch):  # a training step that fails at once (a bad batch, a bug in a method)
        raise RuntimeError("boom")

    task = _method("simclr")
    task.training_step = failing
    with pytest.raises(RuntimeError, match="boom"):
        fit_task(task, _data(), out_dir=tmp_path, epochs=1, batch_size=2, progress=False, plot=False)
    assert not list(tmp_path.glob("checkpoints/step_*"))  # no step-0 checkpoint
    # a step-0 checkpoint left by an older version (or a Ctrl-C before the first update) is set aside
    (tmp_path / "checkpoints").mkdir(exist_ok=True)
    for suffix in (".safetensors", ".state.pt"):
        (tmp_path / "checkpoints" / f"step_00000000{suffix}").write_bytes(b"x")
    result = fit_task(_method("simclr"), _data(2), out_dir=tmp_path, epochs=1, batch_size=2, progress=False, plot=False)
    assert result.completed and (tmp_path / "checkpoints" / "set_aside" / "step_00000000.state.pt").is_file()
