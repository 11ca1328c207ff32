"""Video classification datasets: annotation lists and class-per-folder trees.

A dataset item is ``(clip, label)``: ``clip`` is ``(C, T, H, W)`` float after the transform, or, with
``multi_view=True``, all views of the video stacked as ``(V, C, T, H, W)``. With ``return_info=True`` the
item is ``(clip, label, info)``, ``info`` being a dict with ``index`` (the requested index),
``source_index`` (the sample actually returned) and ``substituted`` (bool).

Views (``multi_view=True``). The sampler gives ``K = sampler.num_clips`` temporal clips per video and
the transform is applied to each clip separately, so every clip is its own view:

* evaluation (``train=False`` sampler, deterministic transform): ``V = K * transform.num_crops``
  (clip-major: view ``k * num_crops + j`` is temporal clip ``k``, spatial crop ``j``); an evaluator
  averages its logits over ``V``.
* training / self-supervised views (``train=True`` sampler, random transform): ``V = K`` views, each
  from its own randomly placed clip, each with its own random augmentation drawn once and applied to
  all frames of that view (two views differ; the frames of one view are augmented alike).
  ``transform`` may also be a sequence of ``V`` transforms, view ``k`` using ``transform[k]``
  (asymmetric views as in BYOL / SimCLR). With a one-clip sampler and ``V`` transforms, all views
  share that clip (same frames, different augmentations).

All views of an item come from the same ``(index, seed)`` draw (see Randomness) and the label is
returned as usual. The view logic lives in :mod:`vitzoo.data.views`.

Decoders are opened inside ``__getitem__`` and closed before it returns, so no decoder ever exists
when DataLoader workers are forked, and none outlives its sample.

Bad videos: ``on_error="raise"`` propagates :class:`VideoDecodeError`; ``on_error="skip"`` logs a
warning, counts the failure and returns the next sample instead (index + 1, + 2, ... modulo the
length: deterministic), giving up with ``RuntimeError`` after ``max_retries`` consecutive failures.
``dataset.num_failures`` is held in shared memory, so it is the total over the main process and all
DataLoader workers of this process (not over DDP ranks). Substituting keeps batch shapes intact but
changes what is evaluated: prefer ``"raise"`` for evaluation, or filter on ``info["substituted"]``.

Bad options (an unknown ``on_error``, labels outside ``classes``, several views without
``multi_view=True``, a transform sequence whose length does not match the sampler's clips, ...) raise
:class:`~vitzoo.data.errors.DataConfigError` when the dataset is constructed.

Randomness: an index may be an ``(index, seed)`` pair (what :func:`vitzoo.data.make_loader` feeds), in
which case frame sampling and transforms depend only on that seed, whatever the number of workers.
A plain integer index draws its randomness from the torch global RNG.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from einops import rearrange
from torch.utils.data import Dataset

from vitzoo.data.annotations import parse_annotation_file, read_class_names, resolve_in_root
from vitzoo.data.errors import DataConfigError, VideoDecodeError
from vitzoo.data.failures import FailureCounter
from vitzoo.data.sampling import FrameSampler
from vitzoo.data.video import BACKENDS, VideoReader
from vitzoo.data.views import Transform, count_views, make_views, stack_views, view_transforms

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")
ON_ERROR = ("raise", "skip")


def _load_classes(classes: Sequence[str] | str | Path | None) -> list[str] | None:
    if classes is None:
        return None
    if isinstance(classes, str | Path):
        return read_class_names(classes)
    return _check_class_list(classes)


def _check_class_list(classes: Sequence[str]) -> list[str]:
    names = list(classes)
    if not names:
        raise DataConfigError("classes=[] lists no classes; give the class names in label order, or None")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataConfigError(f"classes repeats {repeated[:5]}; each class name must appear once")
    return names


def _check_sampler(sampler) -> int:
    """The sampler's number of clips per video; a one-line error for something that is not a sampler."""
    clips = getattr(sampler, "num_clips", None)
    if not callable(sampler) or not isinstance(clips, int) or clips < 1:
        shown = repr(sampler) if isinstance(sampler, int | float | str) else f"a {type(sampler).__name__}"
        raise DataConfigError(
            f"sampler={shown} is not a frame sampler (a callable with num_frames and num_clips >= 1); "
            "use SegmentSampler or DenseSampler"
        )
    return clips


def _check_labels(samples: list[tuple[Path, int]], classes: list[str] | None) -> None:
    for path, label in samples:
        if label < 0 or (classes is not None and label >= len(classes)):
            valid = "labels must be >= 0" if classes is None else f"valid labels are 0..{len(classes) - 1}"
            raise DataConfigError(f"sample {str(path)!r} has label {label}; {valid}")


class VideoClipDataset(Dataset):
    """Clips from a list of ``(video path, label)`` samples (the base of the concrete datasets).

    Args:
        samples: ``[(path, label), ...]``.
        sampler: frame sampler (:class:`SegmentSampler`, :class:`DenseSampler`); its ``train`` flag
            decides whether sampling is random, its ``num_clips`` how many clips (views) per video.
        transform: ``(T, C, H, W) uint8 -> (C, T, H, W)`` or ``(N, C, T, H, W)``
            (:func:`train_transform`, :func:`eval_transform`); ``None`` returns uint8 ``(C, T, H, W)``.
            A sequence of transforms applies ``transform[k]`` to view ``k`` (needs ``multi_view=True``;
            see the module docstring).
        classes: class names in label order (optional); labels must then be in ``[0, len(classes))``.
        backend: ``"decord"`` or ``"pyav"``.
        num_threads: decoder threads per reader (1 suits DataLoader workers).
        decode_short_side: resize at decode time so the short side has this length (saves work when
            videos are much larger than the model input).
        on_error: ``"raise"`` or ``"skip"`` (see module docstring).
        max_retries: consecutive substitutes tried under ``"skip"`` before giving up.
        multi_view: return all views stacked, ``(V, C, T, H, W)`` (evaluation, or several training
            views per video); if False, the sampler must give one clip and the transform one crop.
        return_info: also return the ``info`` dict (see module docstring).

    Raises:
        DataConfigError: a bad option (see the module docstring).
    """

    supports_sample_seeds = True  # accepts (index, seed) keys; see vitzoo.data.loader

    def __init__(
        self,
        samples: Sequence[tuple[str | Path, int]],
        *,
        sampler: FrameSampler,
        transform: Transform | Sequence[Transform] | None = None,
        classes: Sequence[str] | None = None,
        backend: Literal["decord", "pyav"] = "decord",
        num_threads: int = 1,
        decode_short_side: int | None = None,
        on_error: Literal["raise", "skip"] = "raise",
        max_retries: int = 10,
        multi_view: bool = False,
        return_info: bool = False,
    ) -> None:
        if on_error not in ON_ERROR:
            raise DataConfigError(f"on_error={on_error!r}; use one of {ON_ERROR}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise DataConfigError(f"max_retries={max_retries!r}; use an integer >= 0")
        if backend not in BACKENDS:
            raise DataConfigError(f"backend={backend!r}; use one of {BACKENDS}")
        if decode_short_side is not None and (not isinstance(decode_short_side, int) or decode_short_side < 1):
            raise DataConfigError(f"decode_short_side={decode_short_side!r}; use an integer >= 1 or None")
        if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 0:
            raise DataConfigError(f"num_threads={num_threads!r}; use an integer >= 0 (0: the decoder decides)")
        if not samples:
            raise DataConfigError("the dataset has no samples")
        num_clips = _check_sampler(sampler)
        transforms = view_transforms(transform, num_clips)
        num_views = count_views(transforms)
        if num_views > 1 and not multi_view:
            raise DataConfigError(
                f"each sample has {num_views} views (sampler num_clips={num_clips}, {len(transforms)} transform(s), "
                "multi-crop?); construct the dataset with multi_view=True"
            )
        self.samples = [(Path(p), int(label)) for p, label in samples]
        self.classes = _check_class_list(classes) if classes is not None else None
        _check_labels(self.samples, self.classes)
        self.sampler = sampler
        self.transform = transform
        self._transforms = transforms
        self.backend = backend
        self.num_threads = num_threads
        self.decode_short_side = decode_short_side
        self.on_error = on_error
        self.max_retries = max_retries
        self.multi_view = multi_view
        self.return_info = return_info
        self.failures = FailureCounter()

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list[int]:
        """Label of every sample, in order."""
        return [label for _, label in self.samples]

    @property
    def num_classes(self) -> int:
        """``len(classes)`` when class names are known, else ``max(label) + 1``."""
        return len(self.classes) if self.classes is not None else max(self.labels) + 1

    @property
    def num_failures(self) -> int:
        """Failed decode attempts so far, summed over this process and its DataLoader workers.

        Every attempt counts: a broken file met as itself and again as a neighbour's substitute
        counts twice. ``failures.reset()`` sets it back to zero (e.g. at the start of an epoch).
        """
        return self.failures.value

    def load(self, index: int, rng: np.random.Generator) -> torch.Tensor:
        """Decode, sample and transform sample ``index`` (no error policy; raises VideoDecodeError)."""
        frames, num_clips = self.read_frames(index, rng)  # (K*T, C, H, W) uint8
        clips = rearrange(frames, "(k t) c h w -> k t c h w", k=num_clips)
        views = make_views(clips, self._transforms)  # each (C, T, H, W), or (N, C, T, H, W) for multi-crop
        if not self.multi_view:
            if len(views) != 1 or views[0].ndim != 4:
                raise DataConfigError(
                    "this sample has several views (num_clips > 1 or a multi-crop transform); "
                    "construct the dataset with multi_view=True"
                )
            return views[0]
        return stack_views(views)  # (V, C, T, H, W)

    def read_frames(self, index: int, rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        """The sampled frames of sample ``index``, ``(K*T, C, H, W)`` uint8, and ``K`` (raises VideoDecodeError)."""
        path, _ = self.samples[index]
        with VideoReader(
            path, backend=self.backend, num_threads=self.num_threads, short_side=self.decode_short_side
        ) as reader:
            try:
                indices = self.sampler(reader.num_frames, rng, fps=reader.fps)  # (K, T)
            except ValueError as exc:  # e.g. fps normalisation on a file without a frame rate
                raise VideoDecodeError(path, f"frame sampling failed: {exc}") from exc
            return reader.get(indices.reshape(-1), layout="TCHW"), indices.shape[0]

    def _get(self, index: int, rng: np.random.Generator):
        for attempt in range(self.max_retries + 1):
            source = (index + attempt) % len(self)
            try:
                clip = self.load(source, rng)
            except VideoDecodeError as exc:
                if self.on_error == "raise":
                    raise
                total = self.failures.increment()
                logger.warning(
                    "skipping sample %d: %s; substituting sample %d (%d failures so far)",
                    source, exc, (source + 1) % len(self), total,
                )  # fmt: skip
                continue
            label = self.samples[source][1]
            if self.return_info:
                return clip, label, {"index": index, "source_index": source, "substituted": attempt > 0}
            return clip, label
        raise RuntimeError(
            f"on_error='skip': {self.max_retries + 1} consecutive samples starting at index {index} "
            "failed to decode; is the dataset root right?"
        )

    def __getitem__(self, key: int | tuple[int, int]):
        """Sample ``key`` (an index, or an ``(index, seed)`` pair for worker-independent randomness)."""
        index, seed = (int(key[0]), int(key[1])) if isinstance(key, tuple | list) else (int(key), None)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        index %= len(self)
        if seed is None:
            rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
            return self._get(index, rng)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)  # transforms draw from the torch CPU RNG
            return self._get(index, np.random.default_rng(seed))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self)} samples, sampler={self.sampler}, backend={self.backend!r}, "
            f"on_error={self.on_error!r}, multi_view={self.multi_view})"
        )


class VideoListDataset(VideoClipDataset):
    """Videos listed in an annotation file (``relative/path.mp4 label`` lines) under ``root``.

    Args:
        root: dataset root; every listed path must resolve inside it.
        annotation_file: the list (space, comma or tab separated; see :mod:`vitzoo.data.annotations`).
        classes: class names (a list or a one-name-per-line file); optional. When given, labels
            may also be written as names and integer labels are range-checked.
        **options: keyword arguments of :class:`VideoClipDataset` (``sampler`` is required).
    """

    def __init__(
        self,
        root: str | Path,
        annotation_file: str | Path,
        *,
        classes: Sequence[str] | str | Path | None = None,
        **options,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataConfigError(
                f"dataset root {self.root} is not a directory; the annotation paths are relative to it"
            )
        names = _load_classes(classes)
        samples = parse_annotation_file(annotation_file, root=self.root, classes=names)
        super().__init__(samples, classes=names, **options)


class VideoFolderDataset(VideoClipDataset):
    """Class-per-folder tree: ``root/<class name>/<video>`` (videos may sit in sub-folders).

    Args:
        root: dataset root.
        classes: class names (list or file) fixing the label order and the folders used; default:
            every sub-folder of ``root``, sorted by name.
        extensions: video file suffixes to collect (case-insensitive).
        **options: keyword arguments of :class:`VideoClipDataset` (``sampler`` is required).
    """

    def __init__(
        self,
        root: str | Path,
        *,
        classes: Sequence[str] | str | Path | None = None,
        extensions: Sequence[str] = VIDEO_EXTENSIONS,
        **options,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataConfigError(f"dataset root {self.root} is not a directory")
        names = _load_classes(classes)
        if names is None:
            names = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        suffixes = {e.lower() for e in extensions}
        samples: list[tuple[Path, int]] = []
        for label, name in enumerate(names):
            folder = resolve_in_root(self.root, name)
            if not folder.is_dir():
                raise DataConfigError(f"class folder {folder} does not exist (class {name!r}); check root and classes")
            videos = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not videos:
                logger.warning("class folder %s contains no videos with suffixes %s", folder, sorted(suffixes))
            samples += [(p, label) for p in videos]
        if not samples:
            raise DataConfigError(f"no videos with suffixes {sorted(suffixes)} found under {self.root}")
        super().__init__(samples, classes=names, **options)
