"""Training tasks and their registry (see :mod:`vitzoo.train.task` for the interface).

* ``classification`` (:class:`ClassificationTask`, options :class:`ClassificationOptions`): supervised fine-tuning,
  the default of every recipe;
* self-supervised methods register themselves when :mod:`vitzoo.ssl` is imported (it sits above the engine).

A recipe names its task with ``task: {name: ..., options: {...}}``; :func:`get_task` returns the registered
:class:`TaskEntry` (builder, options dataclass, whether it needs a classifier head, its datasets).
"""

from typing import Any

from vitzoo.train.tasks.classification import ClassificationOptions, ClassificationTask  # registers "classification"
from vitzoo.train.tasks.registry import TASKS, TaskData, TaskEntry, get_task, register_task, task_names


def __getattr__(name: str) -> Any:
    if name == "fit":  # vitzoo.train.fit (train/fit.py), reached here as before; imported late: it imports us
        from vitzoo.train.fit import fit

        return fit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "TASKS",
    "ClassificationOptions",
    "ClassificationTask",
    "TaskData",
    "TaskEntry",
    "fit",
    "get_task",
    "register_task",
    "task_names",
]
