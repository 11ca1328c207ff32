"""``train.compile``: the engine compiles the model in place, checkpoints keep the uncompiled names, and a run
resumes across compiled and eager processes.

The default-suite tests compile through a counting backend (dynamo traces the model, its graphs run eagerly: the
wiring is tested in seconds and the numbers stay bitwise those of eager); the slow test compiles with inductor.
"""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from torch._dynamo.testing import CompileCounter

from tests.helpers.training import IMAGE_NANO, IMAGE_SHAPE, RandomClips, nano_model
from vitzoo.train import fit
from vitzoo.train.config import train_config

# 8 images / batch 2 = 4 updates per epoch, 2 epochs
OPTIONS = dict(epochs=2, batch_size=2, lr=1e-3, warmup_epochs=0.5, log_every=1, progress=False, plot=False)


def _model():
    return nano_model(name=IMAGE_NANO, depth=1, drop_path_rate=0.1)


def _data():
    return RandomClips(8, IMAGE_SHAPE, 4)


@pytest.fixture
def counter(monkeypatch):
    """``nn.Module.compile`` with a counting backend: how many frames dynamo compiled."""
    counter = CompileCounter()
    original = torch.nn.Module.compile

    def compile_counted(self, *args, **kwargs):
        original(self, backend=counter)

    monkeypatch.setattr(torch.nn.Module, "compile", compile_counted)
    return counter


def _keys(path) -> list[str]:
    with safe_open(str(path), "pt") as f:
        return list(f.keys())


def test_compile_is_a_train_option():
    assert train_config().compile is False
    assert train_config(compile=True).compile is True


@pytest.mark.parametrize(
    "first, second",
    [(True, False), pytest.param(False, True, marks=pytest.mark.slow)],
    ids=["compiled-then-eager", "eager-then-compiled"],
)
def test_resume_across_compiled_and_eager_runs(tmp_path, counter, first, second):
    """Stopped after 3 updates and resumed with the other setting: the same weights as one eager run, and no
    ``_orig_mod.`` names in any file written (the state dict is the uncompiled module's)."""
    expected = _model()
    fit(expected, _data(), out_dir=tmp_path / "eager", **OPTIONS)
    assert counter.frame_count == 0

    fit(_model(), _data(), out_dir=tmp_path / "run", max_steps=3, compile=first, **OPTIONS)
    model = _model()
    result = fit(model, _data(), out_dir=tmp_path / "run", resume=True, compile=second, **OPTIONS)
    assert result.completed and result.step == 8
    assert counter.frame_count >= 1  # the compiled half ran through dynamo
    assert all(torch.equal(v, expected.state_dict()[k]) for k, v in model.state_dict().items())
    files = list((tmp_path / "run" / "checkpoints").glob("*.safetensors"))
    assert files and not [k for f in files for k in _keys(f) if "_orig_mod" in k]
    state = torch.load(result.last_checkpoint, weights_only=True)
    assert not [k for k in state["optimizer"]["state"] if isinstance(k, str) and "_orig_mod" in k]


@pytest.mark.slow
def test_compiled_training_with_inductor_matches_eager(tmp_path):
    """Inductor's fused kernels round differently: after 4 updates the weights agree with eager to a tolerance."""
    options = dict(OPTIONS, epochs=1)
    eager, compiled = nano_model(name=IMAGE_NANO), nano_model(name=IMAGE_NANO)
    fit(eager, _data(), out_dir=tmp_path / "eager", **options)
    fit(compiled, _data(), out_dir=tmp_path / "compiled", compile=True, **options)
    assert compiled._compiled_call_impl is not None
    for key, value in compiled.state_dict().items():
        torch.testing.assert_close(value, eager.state_dict()[key], rtol=1e-4, atol=1e-5, msg=key)
