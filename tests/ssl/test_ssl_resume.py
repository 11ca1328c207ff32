"""A self-supervised run stopped and resumed ends bit for bit where the uninterrupted run ends: the backbone, the
heads, BYOL's momentum target network and its momentum all travel through the checkpoint."""

from __future__ import annotations

import json

import torch
from torch.utils.data import TensorDataset

import vitzoo
from tests.helpers.ssl_inputs import IMAGE_BACKBONE
from vitzoo.ssl import build_method
from vitzoo.train import fit_task


def _task():
    torch.manual_seed(0)
    backbone = vitzoo.create(IMAGE_BACKBONE, num_classes=0, depth=1)
    return build_method("byol", backbone, proj_hidden_dim=32, proj_out_dim=16, pred_hidden_dim=32)


def _fit(task, out, **options):
    views = torch.randn(12, 2, 3, 32, 32, generator=torch.Generator().manual_seed(1))  # (N, V, C, H, W)
    data = TensorDataset(views, torch.zeros(12, dtype=torch.long))
    settings = dict(epochs=2, batch_size=4, lr=1e-3, warmup_epochs=0.5, progress=False, seed=0, log_every=1)
    return fit_task(task, data, out_dir=out, **{**settings, **options})


def test_byol_resumed_run_equals_the_uninterrupted_one(tmp_path):
    whole = _task()
    _fit(whole, tmp_path / "whole")
    stopped = _task()
    first = _fit(stopped, tmp_path / "split", max_steps=4)  # stops mid-way through the second epoch
    assert first.step == 4 and stopped.momentum < 1.0  # the cosine schedule ends at 1 with the last update
    resumed = _task()  # a fresh process: everything below comes from the checkpoint
    second = _fit(resumed, tmp_path / "split", resume=True)
    assert second.step == 6 and resumed.momentum == whole.momentum
    expected, got = whole.state_dict(), resumed.state_dict()
    assert expected.keys() == got.keys() and any(k.startswith("target") for k in got)
    for key, value in expected.items():
        assert torch.equal(got[key], value), key
    # what the run logged: every train record (log_every=1) of the resumed run as the uninterrupted one's, momentum
    # included (it is not a tensor of the state: BYOL.resume_at recomputes it from the resumed step)
    assert _logged(tmp_path / "split") == _logged(tmp_path / "whole")
    untouched = _task().state_dict()  # negative control: training moved the target network
    assert any(not torch.equal(untouched[k], got[k]) for k in got if k.startswith("target"))


def _logged(out) -> list[dict[str, float]]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    timing = ("time", "samples_per_s")
    train = [{k: v for k, v in r.items() if k not in timing} for r in records if r["kind"] == "train"]
    assert len(train) == 6 and len({r["momentum"] for r in train}) == 5  # steps 1, 2 log the base value
    return train
