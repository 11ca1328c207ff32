"""Run configuration: the training options (``TrainConfig``) and the CLI recipe (``RunConfig``) with YAML loading.

A recipe is a YAML file with four top-level entries, each mapping onto one dataclass below::

    model:  {name, num_classes, pretrained, tubelet_init, options}   -> ModelSpec
    data:   {root, train, val, classes, layout, sampler, ...}        -> DataSpec
    train:  {epochs, batch_size, lr, ...}                            -> TrainConfig
    output_dir: runs/<recipe>

Nothing is inferred: every key the file can hold is a dataclass field, unknown keys raise
:class:`ConfigError` with the closest known names, and values are checked against the field types
(``1e-3`` is accepted for a float field even though YAML 1.1 reads it as a string). Command-line
overrides use dotted keys, ``--set train.lr=3e-4 --set model.options.drop_path_rate=0.1``, their values
parsed as YAML scalars. ``model.options`` is a free mapping of model config fields; ``vitzoo.create``
checks them (unknown names raise with close matches there).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

AMP_MODES = ("none", "bf16")
EVAL_AVERAGES = ("prob", "logits")
LAYOUTS = ("list", "folders")
SAMPLERS = ("dense", "segment")


class ConfigError(ValueError):
    """A recipe or override that does not fit the config dataclasses (unknown key, wrong type or value)."""


@dataclass
class TrainConfig:
    """Options of :func:`vitzoo.train.fit` (the ``train:`` section of a recipe).

    Steps are optimizer updates: one update consumes ``accum_steps`` batches of ``batch_size`` clips on
    each of the ``world_size`` processes, so the effective batch is their product. The learning rate
    is not rescaled with the batch size.
    """

    epochs: int = 10
    batch_size: int = 8  # clips per process and micro-batch
    accum_steps: int = 1  # micro-batches accumulated per optimizer update
    lr: float = 5e-4  # peak learning rate (after warmup), for the last layer when layer_decay is set
    min_lr: float = 1e-6  # end of the cosine schedule
    warmup_epochs: float = 1.0  # linear warmup from warmup_lr, counted in (fractional) epochs
    warmup_lr: float = 1e-6
    weight_decay: float = 0.05  # not applied to 1-D params (norms, biases) nor pos_embed/cls_token/time_embed
    layer_decay: float | None = None  # layer-wise lr decay factor (e.g. 0.75); see vitzoo.train.optim
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    clip_grad: float | None = 1.0  # max global gradient norm; None disables clipping
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0  # > 0 enables Mixup (video clips (B, C, T, H, W) only; needs an even batch_size)
    cutmix_alpha: float = 0.0  # > 0 enables CutMix (needs an even batch_size)
    amp: str = "none"  # "bf16": bfloat16 autocast on CPU or CUDA; "none": float32
    grad_checkpointing: bool = False  # recompute block activations in backward (model.set_grad_checkpointing)
    ema_decay: float | None = None  # keep an EMA of the weights (timm ModelEmaV3); evaluated and saved as best
    seed: int = 0
    max_steps: int | None = None  # stop (with a checkpoint) after this many updates; the schedule still spans epochs
    device: str = "auto"  # "auto": cuda (the local rank's GPU) if available, else cpu
    num_workers: int = 0  # DataLoader worker processes
    eval_every: int = 1  # evaluate every N epochs (and after the last); 0: never
    eval_batch_size: int | None = None  # default: batch_size
    eval_average: str = "prob"  # multi-view averaging of "prob" (softmax) or "logits"
    save_every: int | None = None  # also checkpoint every N updates (always at epoch ends and on stop)
    keep_last: int = 2  # step checkpoints kept (best.safetensors is kept separately)
    log_every: int = 10  # updates between metric lines in metrics.jsonl
    csv: bool = False  # also write metrics.csv
    plot: bool = True  # write training_curves.png at the end
    progress: bool = True  # tqdm progress bars (rank 0 only)

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values out of range."""
        positive = ("epochs", "batch_size", "accum_steps", "log_every", "keep_last")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("save_every", "max_steps", "eval_batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"train.{name} must be >= 1 or null, got {value}")
        if self.amp not in AMP_MODES:
            raise ConfigError(f"train.amp={self.amp!r}; expected one of {AMP_MODES}")
        if self.eval_average not in EVAL_AVERAGES:
            raise ConfigError(f"train.eval_average={self.eval_average!r}; expected one of {EVAL_AVERAGES}")
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ConfigError(f"train.layer_decay must be in (0, 1], got {self.layer_decay}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ConfigError(f"train.ema_decay must be in (0, 1), got {self.ema_decay}")
        if (self.mixup_alpha > 0 or self.cutmix_alpha > 0) and self.batch_size % 2:
            raise ConfigError(f"Mixup/CutMix needs an even train.batch_size, got {self.batch_size}")
        if self.eval_every < 0 or self.num_workers < 0 or self.warmup_epochs < 0:
            raise ConfigError("train.eval_every, train.num_workers and train.warmup_epochs must be >= 0")
        if self.clip_grad is not None and self.clip_grad <= 0:
            raise ConfigError(f"train.clip_grad must be > 0 or null, got {self.clip_grad}")


@dataclass
class ModelSpec:
    """Which model to build (the ``model:`` section): arguments of ``vitzoo.create``."""

    name: str = ""  # a registered name (vitzoo.list_models())
    num_classes: int = 0  # must equal the number of classes of the dataset
    pretrained: str | None = None  # weight file (an image ViT initialises a video model) or a name in weights/
    tubelet_init: str = "central"  # image -> video kernel inflation: central, average or repeat
    options: dict[str, Any] = field(default_factory=dict)  # model config fields, e.g. {drop_path_rate: 0.1}

    def validate(self) -> None:
        """Raise :class:`ConfigError` for a missing or unknown name, a bad class count or bad options.

        The options are checked by building the model's config (not the model): unknown fields raise with
        the closest field names.
        """
        from vitzoo.api import model_config

        if not self.name:
            raise ConfigError("model.name is required (see vitzoo.list_models())")
        if self.num_classes < 1:
            raise ConfigError(f"model.num_classes must be >= 1, got {self.num_classes}")
        if "num_classes" in self.options:
            raise ConfigError("set the class count with model.num_classes, not model.options.num_classes")
        try:
            model_config(self.name, num_classes=self.num_classes, **self.options)
        except KeyError as exc:  # unknown name; the registry's message lists close ones
            raise ConfigError(f"model.name: {exc.args[0]}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"model.options: {exc}") from None


@dataclass
class DataSpec:
    """Where the videos are and how clips are sampled (the ``data:`` section).

    Clip length and frame size are the model's (``num_frames``, ``img_size``), never repeated here;
    normalisation uses the model config's ``mean``/``std``.
    """

    root: str = ""  # dataset root; every path below is relative to it
    layout: str = "list"  # "list": annotation files; "folders": root/<split>/<class>/<video>
    train: str = "train.txt"  # list: annotation file; folders: sub-folder of root
    val: str | None = "val.txt"  # same for validation; null: no validation
    classes: str | None = None  # one class name per line (label order); optional for "list"
    sampler: str = "dense"  # "dense": consecutive frames every frame_interval; "segment": TSN segments
    frame_interval: float = 2.0  # dense sampler: step between sampled frames
    target_fps: float | None = None  # dense sampler: frame_interval is defined at this frame rate
    train_scale: tuple[float, float] = (0.08, 1.0)  # RandomResizedCrop area range
    hflip: bool = True  # random horizontal flip (off for direction-sensitive labels)
    randaugment: str | None = None  # e.g. "rand-m9-n2"
    eval_clips: int = 1  # temporal views per validation video
    eval_crops: int = 1  # spatial views per clip: 1 (centre) or 3 (three crops)
    backend: str = "decord"  # "decord" or "pyav"
    decode_short_side: int | None = None  # resize while decoding (saves time on large videos)
    on_error: str = "raise"  # undecodable videos: "raise" or "skip" (substitute the next sample)

    def validate(self) -> None:
        """Raise :class:`ConfigError` for unknown choices or a missing root."""
        if not self.root:
            raise ConfigError("data.root is required")
        for name, choices in (("layout", LAYOUTS), ("sampler", SAMPLERS), ("on_error", ("raise", "skip"))):
            if getattr(self, name) not in choices:
                raise ConfigError(f"data.{name}={getattr(self, name)!r}; expected one of {choices}")
        if self.eval_clips < 1 or self.eval_crops not in (1, 3):
            raise ConfigError(
                f"data.eval_clips must be >= 1 and data.eval_crops 1 or 3, got {self.eval_clips}, {self.eval_crops}"
            )


@dataclass
class RunConfig:
    """A whole recipe: model, data, training options and the output directory."""

    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    train: TrainConfig = field(default_factory=TrainConfig)
    output_dir: str = "runs/run"

    def validate(self) -> None:
        """Validate every section."""
        self.model.validate()
        self.data.validate()
        self.train.validate()


# --------------------------------------------------------------------------------------- building
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert where lossless (int -> float, list -> tuple).

    Strings are accepted for numbers (YAML 1.1 reads ``1e-3`` as a string). Raises :class:`ConfigError`.
    """
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in (o for o in options if o is not type(None)):
            try:
                return coerce(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} is not a valid {_type_name(tp)}")
    if tp is Any:
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise ConfigError(f"{key}: expected a list of {len(args)} values, got {value!r}")
        return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int | str | float):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
        if not number.is_integer():
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return int(number)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{key}: unsupported annotation {tp!r}")  # a programming error in this module


def _close(name: str, known: list[str], prefix: str = "") -> str:
    """`` (did you mean train.lr?)`` for an unknown key ``name`` among ``known`` (dotted with ``prefix``)."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    if close:
        return f" (did you mean {', '.join(prefix + c for c in close)}?)"
    return f" (known: {', '.join(prefix + k for k in sorted(known))})"


def build(cls: type, data: dict[str, Any] | None, prefix: str = "") -> Any:
    """An instance of the dataclass ``cls`` from a (nested) mapping, every key and value checked."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'the config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key {dotted!r}{_close(str(key), names, prefix)}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            values[key] = build(tp, value, f"{dotted}.")
        else:
            values[key] = coerce(value, tp, dotted)
    return cls(**values)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain nested dict (tuples as lists) of a config dataclass, ready for YAML or JSON."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {k: plain(v) for k, v in dataclasses.asdict(cfg).items()}


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=3e-4"`` -> ``(["train", "lr"], "3e-4")``; the value is parsed as a YAML scalar or list."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set: malformed key {key!r} in {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: cannot parse value {raw!r}: {exc}") from None
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str], cls: type = None) -> dict[str, Any]:
    """Apply ``key=value`` overrides (dotted keys) to a nested mapping; unknown keys raise with close matches.

    Keys are checked against the dataclass ``cls`` (default :class:`RunConfig`) as they are walked, so
    ``train.lrr=1`` fails here with "did you mean train.lr?". Below a free mapping field
    (``model.options``) any key is accepted.
    """
    cls = RunConfig if cls is None else cls
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for text in overrides:
        parts, value = parse_override(text)
        node, node_cls = data, cls
        for depth, part in enumerate(parts):
            dotted = ".".join(parts[: depth + 1])
            last = depth == len(parts) - 1
            if node_cls is not None:
                names = [f.name for f in dataclasses.fields(node_cls)]
                if part not in names:
                    parent = ".".join(parts[:depth])
                    raise ConfigError(
                        f"unknown config key {dotted!r}{_close(part, names, parent + '.' if parent else '')}"
                    )
                tp = typing.get_type_hints(node_cls)[part]
                next_cls = tp if dataclasses.is_dataclass(tp) else None
                is_mapping = next_cls is not None or tp is dict or typing.get_origin(tp) is dict
            else:
                next_cls, is_mapping = None, True
            if last:
                node[part] = value
                break
            if not is_mapping:
                raise ConfigError(f"{dotted!r} is a value, it has no sub-key {parts[depth + 1]!r}")
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}
            node, node_cls = node[part], next_cls
    return data


def load_run_config(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a YAML recipe, apply ``key=value`` overrides, and return the validated :class:`RunConfig`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no config file {path}")
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping with model, data, train, output_dir")
    data = apply_overrides(data, list(overrides))
    try:
        run = build(RunConfig, data)
        run.validate()
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return run


def train_config(config: TrainConfig | None = None, **options: Any) -> TrainConfig:
    """A validated :class:`TrainConfig`: ``config`` (default values if None) with ``options`` replaced."""
    base = to_dict(config) if config is not None else {}
    cfg = build(TrainConfig, {**base, **options}, prefix="")
    cfg.validate()
    return cfg


def dump_yaml(cfg: Any, path: str | os.PathLike) -> Path:
    """Write a config dataclass as YAML, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    os.replace(tmp, path)
    return path
