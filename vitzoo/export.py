"""Export a model to safetensors, ONNX or a ``torch.export`` program; the format follows the file suffix.

>>> import vitzoo
>>> model = vitzoo.create("vivit_fact_enc_nano_8x2", num_classes=4)
>>> vitzoo.export(model, "model.onnx")  # doctest: +SKIP

* ``.safetensors``: ``vitzoo.save`` (weights + architecture name + config; ``vitzoo.load`` rebuilds the model).
* ``.onnx``: a graph with one input (``clips`` ``(B, C, T, H, W)`` for video models, ``images`` ``(B, C, H, W)``
  for ViTs) and one output ``logits`` ``(B, num_classes)``, batch axis dynamic by default. The default
  exporter is PyTorch's ``torch.export``-based one (``exporter="dynamo"``, opset 18+); the legacy
  TorchScript tracer (``exporter="torchscript"``, opset 17) also works for every vitzoo encoder and is
  faster to run, but PyTorch deprecates it. einops' ``rearrange`` traces to plain reshapes/permutes under
  both, and every registered nano model matches PyTorch in onnxruntime to 1e-4 (``tests/export/test_export.py``).
  The vitzoo config JSON is stored in the model's ``metadata_props``, and so are the input sizes the graph may be
  given (``vitzoo.input_sizes``, :func:`input_size_rule`): :class:`OnnxModel` (onnxruntime) checks every input
  against them before running, so a dynamic-size graph refuses, in one line, the sizes the PyTorch model refuses
  instead of computing something for them (or failing deep inside onnxruntime).
* ``.pt2``: ``torch.export.save`` of the exported program (dynamic batch), the config JSON in its extra files;
  reload with ``torch.export.load(path).module()``.

Dynamic axes: the batch axis always (unless ``dynamic_batch=False``); for ONNX with the default exporter and
``dynamic_size=True``, also the frame count, height and width, for any sizes that divide into the model's tubelets /
patches: the graph then contains the run-time interpolation of the position tables (the contract's ``dynamic_size``
mechanism), traced at an example one tubelet / patch larger than the model's size so that the resampling path is what
gets exported (at the model's own size it resamples to the same grid, which changes nothing). Tested for every
registered nano model in onnxruntime at the native size and at other frame counts and non-square sizes
(``tests/export/test_export.py``), except the families whose ``export_fixed_size_reason`` says why one graph holds
one size (Video Swin: its window plan is built in Python per size); those refuse ``dynamic_size``. ``.pt2`` programs
keep only the batch axis dynamic: ``torch.export`` specialises on the size checks of the Python forward
(``dynamic_size=True`` raises there).

The example input is built from what the model says it takes: ``model.input_shape`` (``(C, H, W)`` for images,
``(C, T, H, W)`` for videos). The model is exported in eval mode (dropout off).

What cannot be exported as asked raises :class:`ExportError` (a ``ValueError``) with one line, before any work
where possible: an unknown suffix or exporter, an output path that is an existing directory, an ONNX ``opset``
outside ``[MIN_OPSET, newest the onnx package knows]`` (vitzoo attention needs ``scaled_dot_product_attention``,
ONNX opset 14), and an opset the exporter did not honour (the dynamo exporter silently falls back to 18 when it
cannot convert: the file is checked after writing and removed). Files are written to a temporary name and
renamed, so a failed export leaves neither a partial file nor a temporary one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from vitzoo.checkpoints.io import model_metadata
from vitzoo.durable import check_zip, make_directory, save_atomic
from vitzoo.errors import VitzooError

log = logging.getLogger(__name__)

FORMATS = {".safetensors": "safetensors", ".onnx": "onnx", ".pt2": "torch-export"}
EXPORTERS = ("dynamo", "torchscript")
MIN_OPSET = 14  # scaled_dot_product_attention
CONFIG_EXTRA_FILE = "vitzoo_config.json"
SIZES_KEY = "vitzoo.input_sizes"  # ONNX metadata: the input sizes the graph may be given (input_size_rule)
_EXTERNAL_DATA_BYTES = 1_800_000_000  # ONNX protobufs cannot exceed 2 GiB: larger weights go to a side file


class ExportError(VitzooError, ValueError):
    """A model that cannot be exported as asked (see the module docstring); the message says why and the fix."""


def input_shape(model: nn.Module) -> tuple[int, ...]:
    """Shape of one input sample, as the model says: ``model.input_shape``."""
    shape = getattr(model, "input_shape", None)
    if shape is None:
        raise TypeError(f"cannot tell the input shape of {type(model).__name__}: expected a vitzoo model")
    return tuple(shape)


def example_input(model: nn.Module, batch_size: int = 2, *, seed: int = 0, grow: int = 0) -> torch.Tensor:
    """A random batch ``(batch_size, *input_shape(model))`` on the model's device (fixed ``seed``).

    ``grow`` adds that many tubelets / patches (``model.size_multiple()``) along every spatio-temporal axis.
    """
    generator = torch.Generator().manual_seed(seed)
    channels, *sizes = input_shape(model)
    sizes = [s + grow * m for s, m in zip(sizes, model.size_multiple(), strict=True)] if grow else sizes
    x = torch.randn(batch_size, channels, *sizes, generator=generator)
    return x.to(next(model.parameters()).device)


def _dynamic_shapes(model: nn.Module, *, batch: bool, size: bool) -> tuple[dict, ...] | None:
    """``torch.export`` dynamic shapes of the one input: the batch axis and/or every spatio-temporal axis."""
    names = ("frames", "height", "width") if model.modality == "video" else ("height", "width")
    dims = {0: torch.export.Dim("batch")} if batch else {}
    if size:
        dims.update({axis: torch.export.Dim(name) for axis, name in enumerate(names, start=2)})
    return (dims,) if dims else None


@contextlib.contextmanager
def _sizes_for_export(model: nn.Module, dynamic_size: bool):
    """With ``dynamic_size``, switch the model's run-time resampling on for the export (restored afterwards)."""
    if not dynamic_size:
        yield
        return
    previous = model.cfg.dynamic_size
    model.cfg.dynamic_size = True
    try:
        yield
    finally:
        model.cfg.dynamic_size = previous


def input_size_rule(model: nn.Module, *, dynamic_size: bool) -> dict:
    """The spatio-temporal input sizes an export of ``model`` takes, as JSON-ready data: ``{"fixed": [...]}``
    (the model's own sizes) without ``dynamic_size``; else ``{"multiple", "minimum", "min_longer_side"}``: what
    the model's ``check_input`` accepts, from ``model.input_size_rule()`` where the model has one (MViTv2: a
    minimal frame size), else multiples of ``model.size_multiple()``."""
    sizes = list(input_shape(model)[1:])
    if not dynamic_size:
        return {"fixed": sizes}
    rule = getattr(model, "input_size_rule", None)
    if rule is not None:
        return dict(rule())
    multiple = list(model.size_multiple())
    return {"multiple": multiple, "minimum": multiple, "min_longer_side": multiple[-1]}


def check_input_size(rule: dict, shape: tuple[int, ...], *, source: str = "the model") -> None:
    """``ValueError`` in one line when an input of ``shape`` ``(B, C, [T,] H, W)`` breaks ``rule``
    (:func:`input_size_rule`), naming the sizes that work."""
    sizes = tuple(int(s) for s in shape[2:])
    if "fixed" in rule:
        if list(sizes) != list(rule["fixed"]):
            raise ValueError(f"{source} takes inputs of size {tuple(rule['fixed'])} only, got {sizes} (shape {shape})")
        return
    multiple, minimum, longer = tuple(rule["multiple"]), tuple(rule["minimum"]), rule["min_longer_side"]
    bad = len(sizes) != len(multiple) or any(s % m for s, m in zip(sizes, multiple, strict=False))
    if bad or any(s < m for s, m in zip(sizes, minimum, strict=False)) or max(sizes[-2:]) < longer:
        raise ValueError(
            f"{source} takes input sizes in multiples of {multiple}, at least {minimum}, with the longer side of "
            f"the frame at least {longer}; got {sizes} (shape {tuple(shape)})"
        )


class OnnxModel:
    """An exported ONNX file run in onnxruntime, with the checks the PyTorch model makes.

    ``OnnxModel(path)(x)`` returns the logits (a numpy array) of ``x`` (a numpy array or tensor), after checking
    its sizes against the ``vitzoo.input_sizes`` the export recorded (:func:`check_input_size`); a file written
    before that record existed runs unchecked. ``metadata`` holds the file's metadata (the vitzoo config JSON).
    """

    def __init__(self, path: str | os.PathLike, *, providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), providers=list(providers))
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        self.rule = json.loads(self.metadata[SIZES_KEY]) if SIZES_KEY in self.metadata else None
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x):
        """Logits ``(B, num_classes)`` of the batch ``x``."""
        array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x
        if self.rule is not None:
            check_input_size(self.rule, tuple(array.shape), source=str(self.path))
        return self.session.run(None, {self.input_name: array})[0]


def format_for(path: str | os.PathLike) -> str:
    """The export format of a path, from its suffix; raises ``ValueError`` for other suffixes."""
    suffix = Path(path).suffix
    if suffix not in FORMATS:
        raise ExportError(f"cannot tell the export format of {Path(path).name!r}: use one of {sorted(FORMATS)}")
    return FORMATS[suffix]


def check_opset(opset: int | None) -> None:
    """:class:`ExportError` for an ONNX opset vitzoo models cannot be written in."""
    if opset is None:
        return
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ExportError(
            f"opset {opset} is not supported: vitzoo models need opset >= {MIN_OPSET} (scaled_dot_product_attention) "
            f"and the installed onnx knows up to {newest}"
        )


def written_opset(path: str | os.PathLike) -> int:
    """The default-domain opset of an ONNX file."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def _input_name(model: nn.Module) -> str:
    return "clips" if model.modality == "video" else "images"


def _config_json(model: nn.Module) -> dict[str, str]:
    return model_metadata(model) if hasattr(model, "cfg") else {}


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    batch_size: int = 2,
    dynamic_batch: bool = True,
    dynamic_size: bool = False,
    exporter: str = "dynamo",
    opset: int | None = None,
) -> Path:
    """Write ``model`` as ONNX (see the module docstring); returns the path."""
    if exporter not in EXPORTERS:
        raise ExportError(f"exporter={exporter!r}; expected one of {EXPORTERS}")
    if dynamic_size and exporter != "dynamo":
        raise ExportError("dynamic_size needs the torch.export-based exporter (exporter='dynamo')")
    if dynamic_size and (reason := getattr(model, "export_fixed_size_reason", None)):
        raise ExportError(
            f"dynamic_size: a {type(model).__name__} graph holds one input size: {reason}; export one graph per "
            "size (the batch axis stays dynamic)"
        )
    check_opset(opset)
    path = Path(path)
    make_directory(path.parent)
    external = sum(p.numel() * p.element_size() for p in model.parameters()) > _EXTERNAL_DATA_BYTES
    options = dict(batch_size=batch_size, dynamic_batch=dynamic_batch, dynamic_size=dynamic_size, opset=opset)

    def save(tmp: Path) -> None:
        _write_onnx(model, tmp, exporter=exporter, external=external, **options)
        if opset is not None and (got := written_opset(tmp)) != opset:
            raise ExportError(
                f"the {exporter} exporter wrote opset {got}, not the requested {opset}; try another --opset"
                + (" or --exporter torchscript" if exporter == "dynamo" else "")
            )
        sizes = json.dumps(input_size_rule(model, dynamic_size=dynamic_size))
        _add_onnx_metadata(tmp, {**_config_json(model), SIZES_KEY: sizes})

    if not external:  # through a temporary file, checked to read back as ONNX, then renamed
        return save_atomic(path, save, written_opset)
    # the weights go to a side file (<path>.data) that the graph names: the graph is written in place
    try:
        save(path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _write_onnx(
    model: nn.Module, tmp: Path, *, batch_size, dynamic_batch, dynamic_size, exporter, opset, external
) -> None:
    """Run the ONNX exporter into ``tmp`` (the weights in ``<tmp>.data`` when ``external``)."""
    x = example_input(model, batch_size, grow=int(dynamic_size))
    name = _input_name(model)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # shape checks traced as constants
        # exporter="torchscript" is an explicit choice; its deprecation is documented above
        for message in (".*legacy TorchScript-based ONNX export", "The feature will be removed"):
            warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)
        if exporter == "dynamo":
            dynamic = _dynamic_shapes(model, batch=dynamic_batch, size=dynamic_size)
            program = torch.onnx.export(
                model,
                (x,),
                None,
                dynamo=True,
                dynamic_shapes=dynamic,
                input_names=[name],
                output_names=["logits"],
                opset_version=opset,
                verbose=False,
            )
            program.save(str(tmp), external_data=external)
        else:
            axes = {name: {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None
            torch.onnx.export(
                model,
                (x,),
                str(tmp),
                dynamo=False,
                input_names=[name],
                output_names=["logits"],
                dynamic_axes=axes,
                opset_version=opset or 17,
                verbose=False,
            )


def _add_onnx_metadata(path: Path, metadata: dict[str, str]) -> None:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def export_program(model: nn.Module, path: str | os.PathLike, *, batch_size: int = 2, dynamic_batch: bool = True):
    """Write a ``torch.export`` program (``.pt2``, config JSON as an extra file); returns the path."""
    path = Path(path)
    make_directory(path.parent)
    x = example_input(model, batch_size)
    dynamic = _dynamic_shapes(model, batch=dynamic_batch, size=False)
    program = torch.export.export(model, (x,), dynamic_shapes=dynamic)
    extra = {CONFIG_EXTRA_FILE: json_text} if (json_text := _config_json(model).get("vitzoo.config")) else {}
    return save_atomic(path, lambda tmp: torch.export.save(program, str(tmp), extra_files=extra), check_zip)


def export(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    batch_size: int = 2,
    dynamic_batch: bool = True,
    dynamic_size: bool = False,
    exporter: str = "dynamo",
    opset: int | None = None,
) -> Path:
    """Export ``model`` to ``path``; the suffix picks the format (``.safetensors``, ``.onnx``, ``.pt2``).

    Args:
        model: a vitzoo model (its config gives the example input and the stored metadata).
        path: output file; written atomically (temporary file + rename).
        batch_size: batch of the example input used for tracing (ONNX, ``.pt2``).
        dynamic_batch: keep the batch axis dynamic (ONNX, ``.pt2``); else it is fixed to ``batch_size``.
        dynamic_size: ONNX with the dynamo exporter only: also keep frames, height and width dynamic (the position
            tables are interpolated in the graph for any size that divides into tubelets / patches).
        exporter: ONNX only: ``"dynamo"`` (default) or ``"torchscript"`` (legacy, deprecated by PyTorch).
        opset: ONNX opset (default: the exporter's own, 18+ for dynamo, 17 for torchscript).

    Returns:
        the path written.
    """
    fmt = format_for(path)
    if Path(path).is_dir():
        example = Path(path) / f"model{Path(path).suffix}"
        raise ExportError(f"{path} is an existing directory; give the file to write, e.g. {example}")
    was_training = model.training
    model.eval()
    try:
        if fmt == "safetensors":
            from vitzoo.api import save

            return save(model, path)
        if dynamic_size and fmt != "onnx":
            raise ExportError(f"dynamic_size applies to ONNX export only, not {fmt} (.pt2 keeps a dynamic batch)")
        with torch.no_grad(), _sizes_for_export(model, dynamic_size):
            if fmt == "onnx":
                return export_onnx(
                    model,
                    path,
                    batch_size=batch_size,
                    dynamic_batch=dynamic_batch,
                    dynamic_size=dynamic_size,
                    exporter=exporter,
                    opset=opset,
                )
            return export_program(model, path, batch_size=batch_size, dynamic_batch=dynamic_batch)
    finally:
        model.train(was_training)


def onnx_max_abs_diff(
    model: nn.Module, path: str | os.PathLike, *, batch_size: int = 3, seed: int = 1, x: torch.Tensor | None = None
) -> float:
    """Largest ``|onnxruntime - PyTorch|`` over the logits of ``x`` (default: a random batch at the model's size)."""
    onnx_model = OnnxModel(path)
    x = example_input(model, batch_size, seed=seed) if x is None else x
    with torch.no_grad():
        ref = model.eval()(x).float().cpu()
    out = onnx_model(x)
    return float((torch.from_numpy(out) - ref).abs().max())


def program_max_abs_diff(model: nn.Module, path: str | os.PathLike, *, batch_size: int = 3, seed: int = 1) -> float:
    """Largest ``|torch.export.load(path) - model|`` over the logits of a random batch."""
    program = torch.export.load(str(path))
    x = example_input(model, batch_size, seed=seed)
    with torch.no_grad():
        return float((program.module()(x) - model.eval()(x)).abs().max())
