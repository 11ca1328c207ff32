"""Export: ONNX (onnxruntime parity with a dynamic batch, every registered nano model), torch.export, safetensors.

The fast tests use the TorchScript-based ONNX exporter for every model (under a second each) and the default
``torch.export``-based one for one video model; the default exporter on every model is marked slow (2-10 s each).
"""

from __future__ import annotations

import onnx
import pytest
import torch

import vitzoo
from vitzoo.checkpoints.io import CONFIG_KEY
from vitzoo.export import example_input, input_shape, onnx_max_abs_diff, program_max_abs_diff
from vitzoo.models import family_of

NANO_MODELS = vitzoo.list_models("*nano*")
# families whose exported graph holds one input size say why; they refuse dynamic_size
FIXED_SIZE = [n for n in NANO_MODELS if family_of(vitzoo.model_config(n)).export_fixed_size_reason]
TOL = 1e-4


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return vitzoo.create(name, num_classes=5)


def _check_onnx(model, path) -> None:
    graph = onnx.load(str(path))
    (inp,) = graph.graph.input
    assert inp.type.tensor_type.shape.dim[0].dim_param  # the batch axis is symbolic
    assert CONFIG_KEY in {p.key for p in graph.metadata_props}
    for batch in (3, 1):  # exported with batch 2
        assert onnx_max_abs_diff(model, path, batch_size=batch) <= TOL


def test_example_input_comes_from_the_model_config():
    assert input_shape(vitzoo.create("vivit_joint_nano_8x2")) == (3, 4, 32, 32)
    assert input_shape(vitzoo.create("vit_nano_patch8_32")) == (3, 32, 32)
    assert example_input(vitzoo.create("vtn_nano_patch8_32"), 2).shape == (2, 3, 4, 32, 32)
    with pytest.raises(TypeError, match="input shape"):
        input_shape(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("name", NANO_MODELS)
def test_onnx_torchscript_exporter_matches_pytorch(tmp_path, name):
    model = _model(name)
    path = vitzoo.export(model, tmp_path / "model.onnx", exporter="torchscript")
    _check_onnx(model, path)
    assert not list(tmp_path.glob(".*"))  # the temporary file was renamed


@pytest.mark.slow
def test_onnx_default_exporter_matches_pytorch(tmp_path):
    model = _model("vivit_fact_sa_nano_8x2")  # einops regrouping between space and time in every block
    _check_onnx(model, vitzoo.export(model, tmp_path / "model.onnx"))


def _check_dynamic_size_onnx(name: str, path) -> None:
    """An ONNX graph exported with dynamic_size runs at the model's size and at other frame counts and sizes."""
    model = vitzoo.create(name, num_classes=5, dynamic_size=True).eval()
    vitzoo.export(model, path, dynamic_size=True)
    graph = onnx.load(str(path))
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert all(d.dim_param for i, d in enumerate(dims) if i != 1)  # every axis but the channels is symbolic
    c, (mh, mw) = model.input_shape, model.size_multiple()[-2:]
    other = (3 * c[1], 2 * mh, 5 * mw) if model.modality == "video" else (2 * mh, 5 * mw)  # frames x3, not square
    for sizes in (c[1:], other):
        assert onnx_max_abs_diff(model, path, x=torch.randn(3, 3, *sizes)) <= TOL


@pytest.mark.parametrize(
    "name", [pytest.param("vivit_fact_enc_nano_8x2", marks=pytest.mark.slow), "vit_nano_patch8_32"]
)
def test_onnx_dynamic_size_runs_at_other_sizes(tmp_path, name):
    _check_dynamic_size_onnx(name, tmp_path / "model.onnx")


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in NANO_MODELS if n not in FIXED_SIZE])
def test_onnx_dynamic_size_every_model(tmp_path, name):
    _check_dynamic_size_onnx(name, tmp_path / "model.onnx")


@pytest.mark.parametrize("name", FIXED_SIZE)
def test_dynamic_size_is_refused_where_one_graph_holds_one_size(tmp_path, name):
    with pytest.raises(ValueError, match="graph holds one input size: its window plan"):
        vitzoo.export(_model(name), tmp_path / "m.onnx", dynamic_size=True)
    assert not list(tmp_path.iterdir())


def test_dynamic_size_needs_the_dynamo_exporter(tmp_path):
    with pytest.raises(ValueError, match="dynamo"):
        vitzoo.export(_model("vit_nano_patch8_32"), tmp_path / "m.onnx", dynamic_size=True, exporter="torchscript")


def test_torch_export_program_refuses_dynamic_size(tmp_path):
    with pytest.raises(ValueError, match="ONNX export only"):
        vitzoo.export(_model("vit_nano_patch8_32"), tmp_path / "m.pt2", dynamic_size=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", NANO_MODELS)
def test_onnx_default_exporter_every_model(tmp_path, name):
    model = _model(name)
    _check_onnx(model, vitzoo.export(model, tmp_path / "model.onnx"))


def test_onnx_static_batch(tmp_path):
    model = _model("vit_nano_patch8_32")
    path = vitzoo.export(model, tmp_path / "m.onnx", exporter="torchscript", dynamic_batch=False, batch_size=2)
    assert onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 2
    assert onnx_max_abs_diff(model, path, batch_size=2) <= TOL


def _check_program(model, path) -> None:
    for batch in (3, 1):
        assert program_max_abs_diff(model, path, batch_size=batch) <= TOL


def test_torch_export_round_trip(tmp_path):
    model = _model("vivit_fact_enc_nano_8x2")
    path = vitzoo.export(model, tmp_path / "model.pt2")
    _check_program(model, path)
    extra = {"vitzoo_config.json": ""}
    torch.export.load(str(path), extra_files=extra)
    assert '"num_classes": 5' in extra["vitzoo_config.json"]


@pytest.mark.slow
@pytest.mark.parametrize("name", NANO_MODELS)
def test_torch_export_every_model(tmp_path, name):
    model = _model(name)
    _check_program(model, vitzoo.export(model, tmp_path / "model.pt2"))


def test_safetensors_keeps_the_config(tmp_path):
    model = _model("timesformer_nano_patch8_32").train()
    path = vitzoo.export(model, tmp_path / "model.safetensors")
    assert model.training  # export puts the model in eval mode only while exporting
    reloaded = vitzoo.load(path)
    assert reloaded.cfg == model.cfg
    x = example_input(model, 2)
    torch.testing.assert_close(reloaded(x), model.eval()(x), rtol=0, atol=0)


def test_unknown_suffix_and_exporter(tmp_path):
    model = _model("vit_nano_patch8_32")
    with pytest.raises(ValueError, match="export format"):
        vitzoo.export(model, tmp_path / "model.tflite")
    with pytest.raises(ValueError, match="exporter"):
        vitzoo.export(model, tmp_path / "model.onnx", exporter="tvm")
