"""From a :class:`RunConfig` to a trained or evaluated model: what ``vitzoo train`` and ``vitzoo eval`` run.

``train_from_config`` builds the model, the datasets (the task's own when it registered a builder for them, else
the labelled video datasets below), the task (``task.name`` in the registry of :mod:`vitzoo.train.tasks`), and
trains it with :func:`vitzoo.train.engine.fit_task`.

The labelled video datasets come from :mod:`vitzoo.data`: ``VideoListDataset`` (``layout: list``, annotation files under
``root``) or ``VideoFolderDataset`` (``layout: folders``, ``root/<split>/<class>/<video>``). Clip length and
frame size are the model's (``num_frames``, ``img_size``) and normalisation its ``mean``/``std``; the
validation set returns all ``eval_clips x eval_crops`` views of a video, ``(V, C, T, H, W)``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from torch import nn
from torch.utils.data import Dataset

from vitzoo.train.checkpointing import CheckpointManager, check_weights_file, seed_everything
from vitzoo.train.config import ConfigError, DataSpec, ModelSpec, RunConfig
from vitzoo.train.engine import FitResult, fit_task
from vitzoo.train.errors import CheckpointReadError
from vitzoo.train.eval import EvalResult, evaluate
from vitzoo.train.tasks import TaskData, get_task
from vitzoo.train.tasks.classification import check_classes

log = logging.getLogger(__name__)


def build_model(spec: ModelSpec) -> nn.Module:
    """``vitzoo.create(spec.name, pretrained=..., num_classes=..., **spec.options)``."""
    from vitzoo.api import create

    return create(
        spec.name,
        pretrained=spec.pretrained,
        tubelet_init=spec.tubelet_init,
        num_classes=spec.num_classes,
        **spec.options,
    )


def _sampler(spec: DataSpec, num_frames: int, *, train: bool, num_clips: int = 1):
    from vitzoo.data import DenseSampler, SegmentSampler

    if spec.sampler == "segment":
        return SegmentSampler(num_segments=num_frames, train=train, num_clips=num_clips)
    return DenseSampler(
        num_frames=num_frames,
        frame_interval=spec.frame_interval,
        train=train,
        num_clips=num_clips,
        target_fps=spec.target_fps,
    )


def _dataset(spec: DataSpec, split: str, *, sampler, transform, multi_view: bool) -> Dataset:
    from vitzoo.data import VideoFolderDataset, VideoListDataset

    root = Path(spec.root)
    classes = root / spec.classes if spec.classes is not None else None
    options = dict(
        sampler=sampler,
        transform=transform,
        classes=classes,
        backend=spec.backend,
        decode_short_side=spec.decode_short_side,
        on_error=spec.on_error,
        multi_view=multi_view,
    )
    if spec.layout == "folders":
        return VideoFolderDataset(root / split, **options)
    return VideoListDataset(root, root / split, **options)


def build_datasets(spec: DataSpec, model: nn.Module) -> tuple[Dataset, Dataset | None]:
    """``(train_set, val_set)`` for ``model`` (``val_set`` is None when ``spec.val`` is null)."""
    from vitzoo.data import eval_transform, train_transform

    cfg = model.cfg
    shape = model.input_shape
    if len(shape) != 4:
        name = type(model).__name__
        raise ConfigError(f"the video recipes need a video model (clips (C, T, H, W)); {name} takes {shape}")
    _, num_frames, img_size, _ = shape
    train_tf = train_transform(
        img_size=img_size,
        mean=cfg.mean,
        std=cfg.std,
        scale=spec.train_scale,
        hflip=spec.hflip,
        randaugment=spec.randaugment,
    )
    train_set = _dataset(
        spec, spec.train, sampler=_sampler(spec, num_frames, train=True), transform=train_tf, multi_view=False
    )
    val_set = None
    if spec.val is not None:
        val_tf = eval_transform(img_size=img_size, mean=cfg.mean, std=cfg.std, num_crops=spec.eval_crops)
        val_sampler = _sampler(spec, num_frames, train=False, num_clips=spec.eval_clips)
        val_set = _dataset(spec, spec.val, sampler=val_sampler, transform=val_tf, multi_view=True)
    return train_set, val_set


def task_data(run: RunConfig, model: nn.Module) -> TaskData:
    """The labelled video datasets of a recipe (:func:`build_datasets`) as :class:`TaskData`."""
    train_set, val_set = build_datasets(run.data, model)
    return TaskData(train=train_set, val=val_set, classes=getattr(train_set, "classes", None))


def train_from_config(run: RunConfig, *, resume: bool | str | os.PathLike = False) -> FitResult:
    """Build the model, datasets and task of a recipe and train the task into ``run.output_dir``."""
    run.validate()
    entry = get_task(run.task.name)
    seed_everything(run.train.seed)  # the same initial weights on every rank and every run
    model = build_model(run.model)
    data = (entry.datasets or task_data)(run, model)
    task = entry.build(run, model, data)
    return fit_task(
        task,
        data.train,
        val_data=data.val,
        config=run.train,
        out_dir=run.output_dir,
        resume=resume,
        run_config=run,
    )


def default_checkpoint(run: RunConfig) -> Path:
    """``best.safetensors`` of the run, else the weights of its latest checkpoint."""
    ckpt = CheckpointManager(Path(run.output_dir) / "checkpoints")
    if ckpt.best_path.is_file():
        return ckpt.best_path
    latest = ckpt.latest()
    if latest is None:
        raise FileNotFoundError(f"no checkpoint in {ckpt.directory}; train first or pass --checkpoint")
    return CheckpointManager.weights_path_for(latest)


def readable_weights(run: RunConfig, path: Path) -> Path:
    """``path`` when it is a complete safetensors file; else :class:`CheckpointReadError` naming what is wrong with
    it and the newest step checkpoint of the run that is complete, to use instead."""
    try:
        check_weights_file(path)
    except CheckpointReadError as exc:
        ckpt = CheckpointManager(Path(run.output_dir) / "checkpoints")
        for _, state_path in reversed(ckpt.list()):
            candidate = CheckpointManager.weights_path_for(state_path)
            if candidate.resolve() == path.resolve():
                continue
            try:
                check_weights_file(candidate)
            except CheckpointReadError:
                continue
            raise CheckpointReadError(f"{exc}; evaluate another checkpoint, e.g. --checkpoint {candidate}") from None
        raise CheckpointReadError(f"{exc}; no other checkpoint of {ckpt.directory} is readable") from None
    return path


def check_architecture(run: RunConfig, path: Path, arch: str) -> None:
    """:class:`ConfigError` when a checkpoint holds another registered model than the recipe's ``model.name``.

    The evaluation would run (the model is rebuilt from the checkpoint), but under this recipe's name and output
    folder, with its data settings chosen for another model: nearly always the wrong recipe or the wrong file.
    """
    from vitzoo.registry import MODELS

    if not arch or not run.model.name:
        return
    try:
        same = MODELS.resolve(arch) == MODELS.resolve(run.model.name)
    except KeyError:  # a name this checkout does not register: compare as written
        same = arch == run.model.name
    if not same:
        raise ConfigError(
            f"{path} holds a {arch} model but the recipe trains {run.model.name}; pass the recipe of the run that "
            f"wrote it, or --set model.name={arch} to evaluate it with this recipe's data"
        )


def evaluate_from_config(
    run: RunConfig,
    *,
    checkpoint: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
) -> EvalResult:
    """Evaluate a checkpoint (default: :func:`default_checkpoint`) on the recipe's validation set.

    The model is rebuilt from the checkpoint's own metadata (``vitzoo.load``); results go to ``out_dir``
    (default ``<output_dir>/eval/<checkpoint name>``). Refused with one line: a damaged file (naming a readable
    checkpoint to use instead), a checkpoint of another model than the recipe's (:func:`check_architecture`), a
    class count that does not fit the validation set.
    """
    from vitzoo.api import load
    from vitzoo.checkpoints.io import ARCH_KEY, read_metadata
    from vitzoo.train.distributed import default_device, init_distributed

    if run.task.name != "classification":
        raise ConfigError(
            f"vitzoo eval evaluates classifiers; this recipe trains task {run.task.name!r} (for the frozen features "
            "of a self-supervised checkpoint: vitzoo knn, vitzoo linear-probe)"
        )
    if run.data.val is None:
        raise ConfigError("the recipe has no validation set (data.val is null); set one with --set data.val=...")
    path = Path(checkpoint) if checkpoint is not None else default_checkpoint(run)
    if path.suffix == ".safetensors":
        readable_weights(run, path)
        check_architecture(run, path, read_metadata(path).get(ARCH_KEY, ""))
    info = init_distributed(timeout_s=run.train.dist_timeout_s)
    device = default_device(info, run.train.device)
    model = load(path)
    _, val_set = build_datasets(run.data, model)
    check_classes(val_set, model.cfg.num_classes, "validation", fix=f"{path} was trained for another class list")
    out_dir = Path(out_dir) if out_dir is not None else Path(run.output_dir) / "eval" / path.stem
    result = evaluate(
        model.to(device),
        val_set,
        batch_size=run.train.eval_batch_size or run.train.batch_size,
        num_workers=run.train.num_workers,
        amp=run.train.amp,
        average=run.train.eval_average,
        out_dir=out_dir,
        progress=run.train.progress,
    )
    log.info("%s on %s: %s", path, run.data.val, result)
    return result


def frame_sampler(spec: DataSpec, num_frames: int, *, train: bool, num_clips: int = 1):
    """The recipe's frame sampler (``data.sampler``) for clips of ``num_frames`` frames: what tasks with their own
    datasets (``vitzoo.ssl``) reuse for the clips they evaluate on."""
    return _sampler(spec, num_frames, train=train, num_clips=num_clips)


def split_dataset(spec: DataSpec, split: str, *, sampler, transform, multi_view: bool = False) -> Dataset:
    """The videos of one split (``spec.train`` or ``spec.val``) with any sampler and transform, laid out as the recipe
    says (``list`` or ``folders``): what tasks with their own datasets (``vitzoo.ssl``) build on."""
    return _dataset(spec, split, sampler=sampler, transform=transform, multi_view=multi_view)
