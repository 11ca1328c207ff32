"""The datasets of a masked-autoencoder recipe (``task.name: videomae | mae``): one augmented clip and its masks.

Training (from the recipe's ``data`` section): the ``data.train`` split, one clip per video from the recipe's
frame sampler (VideoMAE samples 16 frames ``data.frame_interval`` apart: 4 on Kinetics, 2 on Something-Something),
augmented by :func:`masked_augment` (random resized crop, horizontal flip when ``data.hflip``, no colour
augmentation), then wrapped in :class:`MaskedSamples`, which adds the encoder's mask (and the decoder's, when the
task has one) drawn from the sample's own seed. Image models read ``data.layout: folders`` as the other
self-supervised tasks do. Validation is the kNN memory / query pair of every self-supervised recipe
(:func:`vitzoo.ssl.data.knn_pair`); its queries also feed the reconstruction picture.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset
from torchvision.transforms import v2

from vitzoo.data.masking import sample_generator
from vitzoo.schema import check_min_max
from vitzoo.ssl.data import _image_folder, knn_pair
from vitzoo.ssl.methods.config import check_positive
from vitzoo.ssl.methods.masked import MAEConfig, MaskedConfig, VideoMAEConfig, mask_generators
from vitzoo.train.config import RunConfig
from vitzoo.train.recipe import frame_sampler, split_dataset
from vitzoo.train.tasks.registry import TaskData, get_task

MaskFn = Callable[[torch.Generator], torch.Tensor]


@dataclass
class CropOptions:
    """The training crop of a masked-autoencoder recipe (``task.options.crop``).

    Attributes:
        scale: area fraction of the random resized crop. The default, 0.44-1, is the area range of VideoMAE's
            multi-scale crop (sides scaled by 1, 0.875, 0.75 or 0.66); MAE crops 0.2-1 of an image.
        ratio: aspect-ratio range of the crop.
    """

    scale: tuple[float, float] = (0.44, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    def validate(self) -> None:
        """Raise :class:`~vitzoo.schema.ConfigError` for values out of range."""
        check_min_max("crop.scale", self.scale, upper=1, meaning="crop area fraction")
        check_min_max("crop.ratio", self.ratio, meaning="crop aspect ratio")


def masked_options(config_cls: type[MaskedConfig]) -> type[MaskedConfig]:
    """``task.options`` of a masked recipe: the method's config plus ``crop`` and ``knn_memory`` (see
    :func:`vitzoo.ssl.options.task_options`, which adds ``views`` instead for the multi-view methods)."""

    @dataclass
    class Options(config_cls):
        crop: CropOptions = field(default_factory=CropOptions)
        knn_memory: int | None = None

        def validate(self) -> None:
            super().validate()
            self.crop.validate()
            check_positive(knn_memory=self.knn_memory)

    name = config_cls.__name__.removesuffix("Config") + "Options"
    Options.__name__ = Options.__qualname__ = name
    Options.__doc__ = f"``task.options`` of a {name.removesuffix('Options')} recipe: :class:`{config_cls.__name__}` "
    Options.__doc__ += "fields, ``crop`` (:class:`CropOptions`) and ``knn_memory``."
    return Options


VideoMAEOptions = masked_options(VideoMAEConfig)
MAEOptions = masked_options(MAEConfig)


def masked_augment(
    *, img_size: tuple[int, int], mean, std, scale=(0.44, 1.0), ratio=(3 / 4, 4 / 3), hflip: bool = True
) -> v2.Compose:
    """VideoMAE's / MAE's pre-training augmentation: random resized crop, horizontal flip (p = 0.5, when
    ``hflip``), float in [0, 1], normalise. Takes a uint8 image or ``tv_tensors.Video``; a clip's frames share
    the draw."""
    steps: list[v2.Transform] = [v2.ToImage(), v2.RandomResizedCrop(img_size, scale=scale, ratio=ratio, antialias=True)]
    if hflip:
        steps.append(v2.RandomHorizontalFlip(p=0.5))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std))]
    return v2.Compose(steps)


class MaskedSamples(Dataset):
    """``dataset``'s ``(input, label)`` samples as ``{"clip", "mask", ["decoder_mask"], "label"}`` dicts.

    The masks are drawn from :func:`vitzoo.data.masking.sample_generator` of the sample's ``(seed, index)``: the
    per-sample seed that :func:`vitzoo.data.make_loader` pairs with every index (it depends on the run's seed,
    the epoch and the rank), so the masks, like the crops, do not depend on the number of workers. The inner
    dataset gets the same key; one that does not take ``(index, seed)`` keys draws its transforms from the torch
    RNG seeded with the sample's seed. A plain index (no seed) uses seed 0: the same masks every time (the
    reconstruction pictures).
    """

    supports_sample_seeds = True

    def __init__(self, dataset: Dataset, mask: MaskFn, decoder_mask: MaskFn | None = None) -> None:
        self.dataset = dataset
        self.mask = mask
        self.decoder_mask = decoder_mask
        self.classes = getattr(dataset, "classes", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = (int(key[0]), int(key[1])) if isinstance(key, tuple | list) else (int(key), 0)
        if getattr(self.dataset, "supports_sample_seeds", False):
            clip, label = self.dataset[(index, seed)]
        else:
            torch.default_generator.manual_seed(seed)  # transforms draw from the torch CPU RNG
            clip, label = self.dataset[index]
        generator = sample_generator(seed, index)
        sample = {"clip": torch.as_tensor(clip), "mask": self.mask(generator), "label": label}
        if self.decoder_mask is not None:
            sample["decoder_mask"] = self.decoder_mask(generator)
        return sample


def masked_datasets(run: RunConfig, model: nn.Module) -> TaskData:
    """The :class:`TaskData` of a masked-autoencoder recipe (see the module docstring)."""
    options = get_task(run.task.name).parse_options(run.task.options)
    spec = run.data
    cfg = model.cfg
    augment = masked_augment(
        img_size=tuple(model.input_shape[-2:]), mean=cfg.mean, std=cfg.std, scale=options.crop.scale,
        ratio=options.crop.ratio, hflip=spec.hflip,
    )  # fmt: skip
    if model.modality == "video":
        from vitzoo.data import ClipTransform

        sampler = frame_sampler(spec, model.input_shape[1], train=True)
        clips = split_dataset(spec, spec.train, sampler=sampler, transform=ClipTransform(augment))
    else:
        clips = _image_folder(spec, spec.train, augment)
    train = MaskedSamples(clips, *mask_generators(options, model))
    bank, queries = knn_pair(spec, model, memory=options.knn_memory, seed=run.train.seed)
    val = (bank, queries) if queries is not None else None
    return TaskData(train=train, val=val, classes=getattr(clips, "classes", None))
