"""What a self-supervised recipe's ``task.options`` hold: the method's config, ``views``, ``knn_memory``.

A recipe names a method and sets its options; the fields of the method's config dataclass (e.g.
:class:`~vitzoo.ssl.methods.SimCLRConfig`) sit at the top level, the training views under ``views``::

    task:
      name: simclr
      options:
        temperature: 0.2
        proj_hidden_dim: 256
        knn_memory: 2000            # kNN validation against 2000 training samples (null: all)
        views:
          num_views: 2
          temporal: cvrl            # each view its own clip, start gaps from CVRL's decreasing density
          scale: [0.3, 1.0]
          blur_p: [1.0, 0.1]        # one value for every view, or one per view (BYOL's asymmetric pair)

Horizontal flipping is a property of the data, not of the method: it follows ``data.hflip`` (set it to false
when the label depends on left and right, as the motion demo's direction does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vitzoo.schema import ConfigError, check_min_max, check_range
from vitzoo.ssl.methods.config import MethodConfig, check_positive

TEMPORAL = ("cvrl", "shared")


def _check_probabilities(name: str, values: tuple[float, ...], num_views: int) -> None:
    if len(values) not in (1, num_views):
        raise ConfigError(
            f"views.{name} has {len(values)} values for {num_views} views: give one value or one per view"
        )
    for i, p in enumerate(values):
        check_range(f"views.{name}[{i}]" if len(values) > 1 else f"views.{name}", p, low=0, high=1)


@dataclass
class ViewOptions:
    """How the training views are made (``task.options.views``); defaults are CVRL's (Qian et al., 2021).

    Attributes:
        num_views: views per sample (2 in SimCLR, BYOL, CVRL).
        temporal: ``"cvrl"``: each view is its own clip, the start gaps drawn from CVRL's linearly decreasing
            density (:class:`~vitzoo.ssl.temporal.CVRLSampler`); ``"shared"``: one clip, the views differ in
            their spatial augmentation only. Images have no time axis and ignore it.
        max_gap: largest start distance between the clips of one video, in frames (null: the whole video).
        scale, ratio: random resized crop area fraction and aspect ratio ranges.
        jitter: colour jitter strengths (brightness, contrast, saturation, hue), applied with ``jitter_p``.
        grayscale_p: probability of grayscale.
        blur_p, solarize_p: probability of Gaussian blur and of solarisation: one value for every view or one
            per view (BYOL: blur ``[1.0, 0.1]``, solarisation ``[0.0, 0.2]``).
    """

    num_views: int = 2
    temporal: Literal["cvrl", "shared"] = "cvrl"
    max_gap: float | None = None
    scale: tuple[float, float] = (0.3, 1.0)
    ratio: tuple[float, float] = (0.5, 2.0)
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: tuple[float, ...] = (0.5,)
    solarize_p: tuple[float, ...] = (0.0,)

    def validate(self) -> None:
        """Raise :class:`~vitzoo.schema.ConfigError` for values out of range."""
        check_range("views.num_views", self.num_views, low=1)
        check_range("views.max_gap", self.max_gap, low=0, optional=True)  # frames; null: the whole video
        check_min_max("views.scale", self.scale, upper=1, meaning="crop area fraction")
        check_min_max("views.ratio", self.ratio, meaning="crop aspect ratio")
        for i, strength in enumerate(self.jitter):
            check_range(f"views.jitter[{i}]", strength, low=0)
        _check_probabilities("jitter_p", (self.jitter_p,), 1)
        _check_probabilities("grayscale_p", (self.grayscale_p,), 1)
        _check_probabilities("blur_p", self.blur_p, self.num_views)
        _check_probabilities("solarize_p", self.solarize_p, self.num_views)

    def per_view(self, name: str, view: int) -> float:
        """The value of the per-view option ``name`` (``blur_p``, ``solarize_p``) for view ``view``."""
        values = getattr(self, name)
        return values[0] if len(values) == 1 else values[view]


def task_options(config_cls: type[MethodConfig]) -> type[MethodConfig]:
    """The options dataclass of a method's recipe task: its config plus ``views`` and ``knn_memory``.

    ``knn_memory`` is the number of training samples in the kNN validation's memory bank (a fixed random
    subset; null: the whole training split).
    """

    @dataclass
    class Options(config_cls):
        views: ViewOptions = field(default_factory=ViewOptions)
        knn_memory: int | None = None

        def validate(self) -> None:
            super().validate()
            self.views.validate()
            check_positive(knn_memory=self.knn_memory)

    name = config_cls.__name__.removesuffix("Config") + "Options"
    Options.__name__ = Options.__qualname__ = name
    Options.__doc__ = f"``task.options`` of a {config_cls.__name__.removesuffix('Config')} recipe: " + (
        f":class:`{config_cls.__name__}` fields, ``views`` (:class:`ViewOptions`) and ``knn_memory``."
    )
    return Options


def num_views_needed(min_views: int, views: ViewOptions) -> None:
    """:class:`ConfigError` when the recipe makes fewer views than the method needs."""
    if views.num_views < min_views:
        raise ConfigError(f"task.options.views.num_views={views.num_views}: this method needs >= {min_views} views")
