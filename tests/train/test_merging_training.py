"""Fine-tuning with token merging on (as ToMe does): finite gradients through the merges, exact resume."""

from __future__ import annotations

import pytest
import torch

from tests.helpers.training import RandomClips, nano_model
from vitzoo.train import fit

# 6 clips / batch 2 = 3 updates
OPTIONS = dict(epochs=1, batch_size=2, lr=1e-3, warmup_epochs=0.0, log_every=1, progress=False, plot=False)


def _model(name="vivit_joint_nano_8x2"):
    return nano_model(name=name, drop_path_rate=0.1, token_merging=3)


def _data():
    return RandomClips(6, (3, 4, 32, 32), 4)


def test_gradients_through_merged_tokens_are_finite():
    model = _model().train()
    clips, labels = next(iter(torch.utils.data.DataLoader(_data(), batch_size=3)))
    torch.nn.functional.cross_entropy(model(clips), labels).backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["encoder.transformer.blocks.1.mlp.fc1.weight"].abs().sum() > 0  # reached through the merges


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vivit_joint_nano_8x2", "timesformer_nano_patch8_32"])  # whole sequence / per frame
def test_resume_with_merging_is_bitwise_identical(tmp_path, name):
    full = _model(name)
    fit(full, _data(), out_dir=tmp_path / "full", **OPTIONS)
    first = fit(_model(name), _data(), out_dir=tmp_path / "part", max_steps=2, **OPTIONS)
    assert first.step == 2 and not first.completed
    resumed = _model(name)
    second = fit(resumed, _data(), out_dir=tmp_path / "part", resume=True, **OPTIONS)
    assert second.completed and resumed.cfg.token_merging == 3
    mismatched = [k for k, v in resumed.state_dict().items() if not torch.equal(v, full.state_dict()[k])]
    assert not mismatched, mismatched[:3]
