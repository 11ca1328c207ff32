"""The evaluation sampling of a recipe as a small record that travels with the weights it trained.

``vitzoo train`` writes :func:`eval_settings` of the recipe's ``data:`` section into every checkpoint (the
``vitzoo.preprocess`` metadata key); ``vitzoo predict`` rebuilds the same :class:`~vitzoo.data.recipe.DataSpec`
from it (:func:`spec_from_settings`) and so samples and transforms a video exactly as ``vitzoo eval`` does. Clip
length, frame size and mean / std are the model's own and are not repeated here.
"""

from __future__ import annotations

from typing import Any

from vitzoo.data.errors import DataConfigError
from vitzoo.data.recipe import DataSpec

EVAL_FIELDS = ("sampler", "frame_interval", "target_fps", "eval_clips", "eval_crops", "decode_short_side")


def eval_settings(spec: DataSpec) -> dict[str, Any]:
    """The fields of ``spec`` that decide how an evaluation video becomes views (JSON-ready)."""
    return {name: getattr(spec, name) for name in EVAL_FIELDS}


def spec_from_settings(settings: dict[str, Any] | None) -> DataSpec:
    """A :class:`DataSpec` with these evaluation fields (``None``: the recipe defaults); unknown keys raise."""
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(EVAL_FIELDS))
    if unknown:
        raise DataConfigError(f"unknown evaluation settings {unknown}; expected some of {list(EVAL_FIELDS)}")
    spec = DataSpec(root=".", **settings)
    spec.validate()
    return spec


__all__ = ["EVAL_FIELDS", "eval_settings", "spec_from_settings"]
