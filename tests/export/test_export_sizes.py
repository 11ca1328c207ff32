"""An exported graph takes the input sizes the PyTorch model takes: MViTv2's minimal frame size (its relative
position tables need every block's grid to keep a token) is refused in one line naming the sizes that work, the
export records the rule (``vitzoo.input_sizes``), and :class:`vitzoo.export.OnnxModel` checks it before running."""

from __future__ import annotations

import itertools

import pytest
import torch

import vitzoo
from vitzoo.export import OnnxModel, check_input_size, input_size_rule

MVITS = ["mvitv2_nano_4x2", "mvitv2_small_16x4", "mvitv1_nano_4x2"]


def _accepts(check, shape) -> bool:
    try:
        check(shape)
    except ValueError:
        return False
    return True


def test_mvitv2_refuses_a_frame_too_small_in_one_line_naming_what_works():
    model = vitzoo.create("mvitv2_nano_4x2", dynamic_size=True).eval()
    with pytest.raises(ValueError) as error:
        model(torch.randn(1, 3, 4, 4, 4))  # was: "Input and output sizes should be greater than 0 ... (W: -1)"
    message = str(error.value)
    assert "\n" not in message and "(4, 4, 4) are too small" in message
    assert "multiples of (2, 4, 4) with T >= 2 and max(H, W) >= 8 px" in message
    with pytest.raises(ValueError, match="too small"):
        model.resample(img_size=4)
    assert model(torch.randn(1, 3, 2, 8, 8)).shape == (1, model.cfg.num_classes)  # the smallest that works


@pytest.mark.parametrize("name", MVITS)
def test_the_recorded_rule_accepts_exactly_what_the_model_accepts(name):
    """Over a grid of sizes, :func:`check_input_size` with the export's rule agrees with the model's own check
    (``check_input`` and, where it passes, the relative-position tables a forward would build)."""
    with torch.device("meta"):  # the checks read the config only: no weights needed
        model = vitzoo.create(name, dynamic_size=True).eval()
    rule = input_size_rule(model, dynamic_size=True)
    for t, h, w in itertools.product(range(1, 7), range(2, 42, 2), (4, 8, 30, 32)):
        shape = (1, 3, t, h, w)
        by_model = _accepts(lambda s: model.check_input(torch.empty(s, device="meta")), shape)
        by_rule = _accepts(lambda s: check_input_size(rule, s), shape)
        assert by_model == by_rule, (shape, by_model, by_rule)
    assert input_size_rule(model, dynamic_size=False) == {"fixed": list(model.input_shape[1:])}


def test_the_rule_agrees_with_running_the_model():
    """The independent check: a real forward of the nano MViTv2 succeeds exactly where the rule accepts."""
    model = vitzoo.create("mvitv2_nano_4x2", dynamic_size=True).eval()
    rule = input_size_rule(model, dynamic_size=True)
    for t, h, w in itertools.product((2,), (4, 8), (4, 8)):
        x = torch.randn(1, 3, t, h, w)
        with torch.no_grad():
            ran = _accepts(model, x)
        assert ran == _accepts(lambda s: check_input_size(rule, s), tuple(x.shape)), (t, h, w)


@pytest.mark.slow  # minutes on 2 shared cores: one dynamic-size ONNX export
def test_a_dynamic_size_onnx_refuses_what_the_model_refuses(tmp_path):
    pytest.importorskip("onnxruntime")
    model = vitzoo.create("mvitv2_nano_4x2", num_classes=3, dynamic_size=True).eval()
    path = vitzoo.export(model, tmp_path / "m.onnx", dynamic_size=True)
    onnx_model = OnnxModel(path)
    for sizes in [(4, 30, 30), (3, 32, 32), (4, 4, 4)]:  # 30 px and 3 frames ran before; 4 px failed in GatherND
        with pytest.raises(ValueError, match="takes input sizes in multiples of"):
            onnx_model(torch.randn(1, 3, *sizes))
    x = torch.randn(2, 3, 6, 16, 24)
    with torch.no_grad():
        expected = model(x)
    assert torch.allclose(torch.from_numpy(onnx_model(x)), expected, atol=1e-4)
