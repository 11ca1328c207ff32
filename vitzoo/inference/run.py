"""``vitzoo.predict``: what is in these videos (or images), as records, with the evaluation's preprocessing."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence

import torch
from torch import nn

from vitzoo.data.errors import VideoDecodeError
from vitzoo.inference.clips import PendingClip, make_scorer, predict_image, predict_video, score_clips
from vitzoo.inference.inputs import expand_inputs, is_image
from vitzoo.inference.records import Prediction, PredictStats
from vitzoo.inference.source import PredictModel, open_model
from vitzoo.progress import progress_bar
from vitzoo.schema import ConfigError, check_range
from vitzoo.train.features import model_device

log = logging.getLogger(__name__)

Inputs = str | os.PathLike | Iterable[str | os.PathLike]
BAD_INPUT = (VideoDecodeError, OSError, ValueError, IndexError, RuntimeError)  # an input's problem, not the run's


def check_options(*, topk: int, stride: float | None, batch_size: int) -> None:
    """One-line errors for options out of range (before anything is decoded)."""
    for key, value in (("topk", topk), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer >= 1, got {value!r}")
        check_range(key, value, low=1)
    check_range("stride", stride, low=0, low_open=True, optional=True)


def iter_predictions(
    model: PredictModel,
    inputs: Inputs,
    *,
    topk: int = 5,
    stride: float | None = None,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    amp: str = "none",
    progress: bool = True,
    stats: PredictStats | None = None,
) -> Iterator[Prediction]:
    """One :class:`Prediction` per input of ``inputs`` (expanded by :func:`~vitzoo.inference.inputs.expand_inputs`),
    in order, as each is done (clips ``batch_size`` at a time); an input that cannot be read gets its ``error`` and
    the others go on."""
    check_options(topk=topk, stride=stride, batch_size=batch_size)
    stats = stats if stats is not None else PredictStats()
    device = torch.device(device) if device is not None else model_device(model.model)
    model.model.to(device)
    score = make_scorer(model, device=device, amp=amp)
    video = model.model.modality == "video"
    pending: list[PendingClip] = []  # clips waiting to be scored together

    def flush() -> list[Prediction]:
        tic = time.perf_counter()
        records = score_clips(model, pending, score, topk=topk, stats=stats) if pending else []
        stats.total_s += time.perf_counter() - tic
        pending.clear()
        return records

    for path in progress_bar(expand_inputs(inputs), enabled=progress, desc="predict", unit="input"):
        tic = time.perf_counter()
        try:
            if is_image(path) == video:
                wrong = "an image input for a video model" if video else "a video input for an image model"
                raise ValueError(wrong)
            if video:
                result = predict_video(model, path, score, topk=topk, stride=stride, batch_size=batch_size, stats=stats)
            else:
                result = predict_image(model, path, score, topk=topk)
        except BAD_INPUT as exc:
            text = " ".join(str(exc).split()) or type(exc).__name__
            log.warning("%s: %s", path, text)
            result = Prediction(path=str(path), error=text)
        stats.inputs += 1
        stats.total_s += time.perf_counter() - tic
        if isinstance(result, PendingClip):
            pending.append(result)
            if len(pending) >= batch_size:
                yield from flush()
        else:  # in input order: the clips before it first
            yield from flush()
            yield result
    yield from flush()


def predict(
    model_or_source: nn.Module | str | os.PathLike,
    inputs: Inputs,
    *,
    topk: int = 5,
    stride: float | None = None,
    batch_size: int = 8,
    labels: Sequence[str] | str | os.PathLike | None = None,
    preprocess: dict | None = None,
    device: str | torch.device | None = None,
    amp: str = "none",
    progress: bool = True,
    stats: PredictStats | None = None,
) -> list[Prediction]:
    """Predict the classes of videos (or images, for an image model), one :class:`Prediction` per input.

    Args:
        model_or_source: a vitzoo classifier, or anything ``vitzoo.load`` reads (file, saved folder, ``hf-hub:``
            name, a shipped weight's name or path); its class names and evaluation sampling are read with it.
        inputs: a path or paths: video / image files, folders (searched recursively), text files listing paths.
        topk: classes per record and per window.
        stride: seconds between the windows of a long video (default: half a window).
        batch_size: windows (of a long video) or clips (each with its evaluation views) per forward pass.
        labels: class names (or a file of them, one per line) replacing the recorded ones.
        preprocess: evaluation sampling replacing the recorded one (``sampler``, ``frame_interval``, ``target_fps``,
            ``eval_clips``, ``eval_crops``, ``decode_short_side``; a model object records none: recipe defaults).
        device: default: the model's device. amp: ``"bf16"`` autocast.
        progress: a bar over the inputs (on a terminal). stats: counters to fill (:class:`PredictStats`).

    Example::

        records = vitzoo.predict("weights/vivit_joint_micro_4x2_motion.safetensors", "videos/")
        records[0].topk[0].label, records[0].segments
    """
    check_options(topk=topk, stride=stride, batch_size=batch_size)
    model = open_model(model_or_source, labels=labels, settings=preprocess)
    options = dict(topk=topk, stride=stride, batch_size=batch_size, device=device, amp=amp, progress=progress)
    return list(iter_predictions(model, inputs, **options, stats=stats))


__all__ = ["check_options", "iter_predictions", "predict"]
