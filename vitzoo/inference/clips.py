"""Scoring one input: a clip with the evaluation views, a long video window by window, an image.

A clip (a video shorter than a window plus one stride; clips are scored ``batch_size`` at a time) goes through
exactly what a ``vitzoo eval`` sample goes
through (:meth:`vitzoo.data.datasets.VideoListDataset.load`): the recipe's sampler with its evaluation clips, the
evaluation transform with its crops, the views stacked and scored in one pass by the model loop of
:mod:`vitzoo.train.features`, their softmax probabilities averaged. So its probabilities are the ones
``vitzoo eval`` computes for it.

A long video is cut into windows of the sampler's span (``num_frames`` frames ``frame_interval`` apart), one every
``stride`` frames. Frames are decoded once, a batch of windows at a time (the frames the batch needs that the
previous batch did not decode), transformed once per frame (the evaluation transform is per frame: resize, crop,
normalise), and dropped as soon as no later window uses them: memory holds one batch's frames whatever the video's
length. Each window is scored with the evaluation crops; the video gets the mean of its windows' probabilities.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from einops import rearrange

from vitzoo.data.recipe import frame_sampler
from vitzoo.data.sampling import DenseSampler
from vitzoo.data.transforms import eval_transform
from vitzoo.data.video import VideoReader
from vitzoo.data.views import make_views, stack_views, view_transforms
from vitzoo.inference.records import Label, Prediction, PredictStats, Window
from vitzoo.inference.source import PredictModel
from vitzoo.inference.timeline import merge_segments, window_starts
from vitzoo.train.features import model_outputs

Scorer = Callable[[torch.Tensor], torch.Tensor]  # (B, V, *input) -> (B, K) probabilities


def make_scorer(pm: PredictModel, *, device: torch.device, amp: str = "none") -> Scorer:
    """``views (B, V, *input) -> probabilities (B, K)``: the mean over views of the softmax, as ``vitzoo eval``."""
    input_ndim = len(pm.model.input_shape) + 1

    def score(views: torch.Tensor) -> torch.Tensor:
        batches = [(views, torch.zeros(len(views)))]
        options = dict(device=device, amp=amp, input_ndim=input_ndim, progress=False)
        with closing(model_outputs(pm.model, batches, **options)) as outputs:
            logits, _ = next(outputs)  # (B, V, K)
        return logits.softmax(dim=-1).mean(dim=1).cpu()  # (B, K)

    return score


def topk_labels(pm: PredictModel, probs: torch.Tensor, k: int) -> list[Label]:
    """The ``k`` most probable classes of ``probs`` ``(K,)``."""
    values, indices = probs.topk(min(k, len(probs)))
    pairs = zip(values.tolist(), indices.tolist(), strict=True)
    return [Label(label=pm.label(i), index=i, prob=float(p)) for p, i in pairs]


def _transform(pm: PredictModel):
    _, *_, img_size, _ = pm.model.input_shape
    cfg = pm.model.cfg
    return eval_transform(img_size=img_size, mean=cfg.mean, std=cfg.std, num_crops=pm.spec.eval_crops)


def predict_image(pm: PredictModel, path: Path, score: Scorer, *, topk: int) -> Prediction:
    """An image through the evaluation transform (its crops as views) for an image model."""
    from PIL import Image

    with Image.open(path) as file:
        image = torch.from_numpy(np.asarray(file.convert("RGB")).copy()).permute(2, 0, 1)  # (C, H, W) uint8
    views = _transform(pm)(image[None])  # (C, 1, h, w) or (N, C, 1, h, w)
    views = views.reshape(-1, *views.shape[-4:])[:, :, 0]  # (V, C, h, w)
    probs = score(views[None])[0]
    return Prediction(path=str(path), topk=topk_labels(pm, probs, topk))


def predict_video(
    pm: PredictModel,
    path: Path,
    score: Scorer,
    *,
    topk: int,
    stride: float | None,
    batch_size: int,
    stats: PredictStats,
) -> Prediction | PendingClip:
    """A long video's record (its sliding windows scored), or a clip's evaluation views, to score in a batch of
    clips with :func:`score_clips` (see the module docstring)."""
    num_frames = pm.model.input_shape[1]
    sampler = frame_sampler(pm.spec, num_frames, train=False, num_clips=pm.spec.eval_clips)
    tic = time.perf_counter()
    with VideoReader(path, backend=pm.spec.backend, short_side=pm.spec.decode_short_side) as reader:
        length, fps = reader.num_frames, reader.fps
        stats.decode_s += time.perf_counter() - tic
        starts, offsets = [], None
        if isinstance(sampler, DenseSampler) and fps > 0:
            offsets = np.floor(sampler.step(fps) * np.arange(num_frames) + 0.5).astype(np.int64)  # (T,)
            span = int(offsets[-1]) + 1
            step = max(1, round(stride * fps)) if stride is not None else max(1, round(span / 2))
            starts = window_starts(length, span, step)
        if not starts:
            return _clip_views(pm, path, reader, sampler, stats=stats)
        windows, probs = _predict_windows(pm, reader, starts, offsets, score, topk=topk, batch=batch_size, stats=stats)
    video = torch.stack(probs).mean(dim=0)
    labels = topk_labels(pm, video, topk)
    return Prediction(path=str(path), topk=labels, windows=windows, segments=merge_segments(windows))


@dataclass
class PendingClip:
    """The evaluation views of one clip, ready to score (with others, :func:`score_clips`)."""

    path: Path
    views: torch.Tensor  # (V, C, T, H, W)
    start: float  # seconds: the first frame the views use
    end: float  # seconds: the last frame they use, plus one frame duration


def _clip_views(pm, path, reader, sampler, *, stats) -> PendingClip:
    """The evaluation views of one clip, as :meth:`VideoListDataset.load` makes them."""
    fps = reader.fps
    indices = sampler(reader.num_frames, None, fps=fps)  # (K, T)
    tic = time.perf_counter()
    frames = reader.get(indices.reshape(-1), layout="TCHW")  # (K*T, C, H, W) uint8
    stats.decode_s += time.perf_counter() - tic
    clips = rearrange(frames, "(k t) c h w -> k t c h w", k=indices.shape[0])
    views = stack_views(make_views(clips, view_transforms(_transform(pm), indices.shape[0])))  # (V, C, T, H, W)
    duration = 1 / fps if fps > 0 else 0.0
    return PendingClip(path, views, float(indices.min()) * duration, float(indices.max() + 1) * duration)


def score_clips(pm: PredictModel, clips: list[PendingClip], score: Scorer, *, topk: int, stats) -> list[Prediction]:
    """Score the views of several clips in one pass -> one record (one window, one segment) per clip."""
    probs = score(torch.stack([c.views for c in clips]))  # (B, K)
    records = []
    for clip, p in zip(clips, probs, strict=True):
        labels = topk_labels(pm, p, topk)
        window = Window(start=clip.start, end=clip.end, topk=labels)
        records.append(Prediction(str(clip.path), topk=labels, windows=[window], segments=merge_segments([window])))
    stats.windows += len(clips)
    return records


def _predict_windows(pm, reader, starts, offsets, score, *, topk, batch, stats):
    """Score the windows at ``starts`` in batches, decoding each frame once (see the module docstring)."""
    transform = _transform(pm)
    fps = reader.fps
    frames: dict[int, torch.Tensor] = {}  # frame index -> transformed frame (C, h, w) or (N, C, h, w)
    windows, probs = [], []
    for first in range(0, len(starts), batch):
        chunk = starts[first : first + batch]
        needed = np.unique(np.add.outer(np.asarray(chunk), offsets))
        missing = [int(i) for i in needed if int(i) not in frames]
        if missing:
            tic = time.perf_counter()
            decoded = reader.get(missing, layout="TCHW")  # (F, C, H, W) uint8
            stats.decode_s += time.perf_counter() - tic
            out = transform(decoded)  # (C, F, h, w) or (N, C, F, h, w): per-frame resize, crop, normalise
            for j, index in enumerate(missing):
                frames[index] = out[..., j, :, :]
        views = torch.stack([torch.stack([frames[int(s + o)] for o in offsets], dim=-3) for s in chunk])
        views = views if views.ndim == 6 else views[:, None]  # (B, V, C, T, h, w)
        chunk_probs = score(views)  # (B, K)
        for s, p in zip(chunk, chunk_probs, strict=True):
            start, end = s / fps, (s + int(offsets[-1]) + 1) / fps
            windows.append(Window(start=start, end=end, topk=topk_labels(pm, p, topk)))
            probs.append(p)
        stats.windows += len(chunk)
        keep_from = starts[first + batch] if first + batch < len(starts) else None
        frames = {i: f for i, f in frames.items() if keep_from is not None and i >= keep_from}
    return windows, probs


__all__ = ["PendingClip", "make_scorer", "predict_image", "predict_video", "score_clips", "topk_labels"]
