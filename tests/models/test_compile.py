"""``torch.compile`` (inductor) against eager for every family: inference outputs, training gradients, and other
input sizes (a second batch size; a second and third clip size with ``dynamic_size=True``).

What dynamo does with a new size (see docs/performance.md): the first new size recompiles once with that axis
marked dynamic (automatic dynamic shapes), so a third size reuses the dynamic graph; either way the output must
equal eager. The default suite captures one cheap family with the ``aot_eager`` backend; the inductor tests of every
family are ``slow`` (inductor compiles C++ kernels: tens of seconds to minutes per model on 2 CPU cores). The
registry-wide inference check is ``tests/test_registry.py``.
"""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
from torch._dynamo.testing import CompileCounterWithBackend

import vitzoo
from tests.helpers.zoo import tiny_input_overrides

FAMILIES = {  # one registered model per family, shrunk by tiny_input_overrides
    "joint": "vivit_joint_nano_8x2",
    "factorised": "vivit_fact_enc_nano_8x2",
    "self-attention": "vivit_fact_sa_nano_8x2",
    "dot-product": "vivit_fact_dot_nano_8x2",
    "vtn": "vtn_nano_patch8_32",
    "timesformer": "timesformer_nano_patch8_32",
    "frame-avg": "frame_avg_nano_patch8_32",
    "mvitv1": "mvitv1_nano_4x2",
    "mvitv2": "mvitv2_nano_4x2",
    "video-swin": "video_swin_nano_4x2",
    "swin": "swin_nano_patch4_window4_32",
    "vit": "vit_nano_patch8_32",
}
TOL = dict(rtol=1e-4, atol=1e-5)
# The Swins' dynamic recompile (window padding and shifted-window masks over symbolic sizes) kept inductor's index
# simplification busy for over 20 minutes on 2 cores without finishing; they are compiled per size instead
# (torch.compile(..., dynamic=False)), as docs/performance.md advises for them
STATIC_PER_SIZE = {"video-swin", "swin"}
# Graphs after each clip size: one graph, then the second size recompiles with dynamic sizes and the third reuses
# that graph; the STATIC_PER_SIZE families compile one graph per size
GRAPHS_PER_SIZE = {family: [1, 2, 3] for family in STATIC_PER_SIZE}


def _model(name: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return vitzoo.create(name, **{**tiny_input_overrides(name), **overrides})


def _input(model: torch.nn.Module, batch: int = 2, scale: int = 1) -> torch.Tensor:
    """A random batch at the model's size, frames and pixels grown by ``scale - 1`` size multiples."""
    shape = list(model.input_shape)
    for i, m in zip(range(len(shape) - len(model.size_multiple()), len(shape)), model.size_multiple(), strict=True):
        shape[i] += (scale - 1) * m
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(batch + scale))


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _check_inference_and_batch_sizes(name: str, backend: str = "inductor") -> None:
    model = _model(name).eval()
    counter = CompileCounterWithBackend(backend)
    compiled = torch.compile(model, backend=counter)
    frames = []
    with torch.no_grad():
        for batch in (2, 3, 5):
            x = _input(model, batch)
            torch.testing.assert_close(compiled(x), model(x), **TOL)
            frames.append(counter.frame_count)
    assert frames == [1, 2, 2]  # one graph; batch 3 recompiles with a dynamic batch axis, batch 5 reuses it


@pytest.mark.slow
def test_captured_vit_equals_eager_at_three_batch_sizes():
    """Dynamo's capture and AOTAutograd's decompositions without inductor's C++ kernels (those take minutes on a
    busy 2-core machine: the inductor tests below are ``slow``)."""
    _check_inference_and_batch_sizes("vit_nano_patch8_32", backend="aot_eager")


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_compiled_inference_equals_eager(family):
    _check_inference_and_batch_sizes(FAMILIES[family])


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_compiled_training_step_equals_eager(family):
    """Loss and every parameter's gradient of one training forward/backward (dropout and drop-path off)."""
    eager = _model(FAMILIES[family]).train()
    compiled_model = _model(FAMILIES[family]).train()
    compiled = torch.compile(compiled_model)
    x = _input(eager)
    loss_eager, loss_compiled = eager(x).square().mean(), compiled(x).square().mean()
    torch.testing.assert_close(loss_compiled, loss_eager, **TOL)
    loss_eager.backward()
    loss_compiled.backward()
    for (key, p), q in zip(eager.named_parameters(), compiled_model.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-3, atol=1e-5, msg=key)


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_compiled_dynamic_size_equals_eager_at_three_sizes(family):
    """With ``dynamic_size=True`` the position tables are interpolated at run time: three clip sizes, each equal to
    eager, with the graph counts of GRAPHS_PER_SIZE (default 1, 2, 2)."""
    model = _model(FAMILIES[family], dynamic_size=True).eval()
    counter = CompileCounterWithBackend("inductor")
    compiled = torch.compile(model, backend=counter, dynamic=False if family in STATIC_PER_SIZE else None)
    expected = GRAPHS_PER_SIZE.get(family, [1, 2, 2])
    frames = []
    with torch.no_grad():
        for scale in (1, 2, 3):
            x = _input(model, scale=scale)
            torch.testing.assert_close(compiled(x), model(x), **TOL)
            frames.append(counter.frame_count)
    assert frames == expected
