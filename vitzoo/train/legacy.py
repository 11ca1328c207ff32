"""Recipes written before tasks had options: ``train.label_smoothing``, ``train.mixup_alpha``,
``train.cutmix_alpha`` and ``train.eval_average`` (in the file or in ``--set``) are classification's options,
now ``task.options``. They keep working: each is moved there with a one-line deprecation warning; given in both
places with different values, the recipe is refused with one line. Their values are checked under their old
names (``train.label_smoothing must be in [0, 1), got 1.5``).
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from typing import Any

from vitzoo.schema import ConfigError, build, coerce, parse_override
from vitzoo.train.config import RunConfig
from vitzoo.train.tasks.classification import ClassificationOptions
from vitzoo.train.tasks.registry import TaskEntry

log = logging.getLogger(__name__)

MOVED_TO_TASK_OPTIONS = ("label_smoothing", "mixup_alpha", "cutmix_alpha", "eval_average")


def take_old_train_options(data: dict[str, Any], overrides: list[str]) -> tuple[dict[str, Any], list[str], dict]:
    """Remove the old ``train.*`` classification keys from a recipe mapping and its ``--set`` overrides (these
    win, as they would have); returns ``(data, other overrides, {key: value})``."""
    old: dict[str, Any] = {}
    train = data.get("train")
    if isinstance(train, dict) and any(key in train for key in MOVED_TO_TASK_OPTIONS):
        train = dict(train)
        old = {key: train.pop(key) for key in MOVED_TO_TASK_OPTIONS if key in train}
        data = {**data, "train": train}
    rest = []
    for text in overrides:
        parts, value = parse_override(text)
        if len(parts) == 2 and parts[0] == "train" and parts[1] in MOVED_TO_TASK_OPTIONS:
            old[parts[1]] = value
        else:
            rest.append(text)
    return data, rest, old


def move_old_train_options(run: RunConfig, old: dict[str, Any], entry: TaskEntry) -> None:
    """Put the old keys' values into ``run.task.options`` (warning once per key); :class:`ConfigError` when
    ``task.options`` gives another value. A task whose options do not have the key ignores it (with a warning),
    as it did when the key was a training option."""
    if not old:
        return
    checked = build(ClassificationOptions, old, prefix="train.")
    checked.validate(prefix="train.")
    hints = typing.get_type_hints(ClassificationOptions)
    takes = {f.name for f in dataclasses.fields(entry.options)} if entry.options is not None else set()
    for key in old:
        value, new = getattr(checked, key), f"task.options.{key}"
        if key not in takes:
            log.warning("train.%s is deprecated and task %r does not take it: ignored", key, entry.name)
            continue
        log.warning("train.%s is deprecated: set %s (the %s task's options) instead", key, new, entry.name)
        if key not in run.task.options:
            run.task.options[key] = value
        elif coerce(run.task.options[key], hints[key], new) != value:
            raise ConfigError(f"train.{key}={value!r} and {new}={run.task.options[key]!r} differ; keep only {new}")
