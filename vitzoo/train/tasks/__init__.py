"""Training tasks and their registry (see :mod:`vitzoo.train.task` for the interface).

* ``classification`` (:class:`ClassificationTask`, options :class:`ClassificationOptions`): supervised fine-tuning,
  the default of every recipe;
* self-supervised methods register themselves when :mod:`vitzoo.ssl` is imported (it sits above the engine).

A recipe names its task with ``task: {name: ..., options: {...}}``; :func:`get_task` returns the registered
:class:`TaskEntry` (builder, options dataclass, whether it needs a classifier head, its datasets).
"""

from vitzoo.train.tasks.classification import ClassificationOptions, ClassificationTask  # registers "classification"
from vitzoo.train.tasks.registry import TASKS, TaskData, TaskEntry, get_task, register_task, task_names

__all__ = [
    "TASKS",
    "ClassificationOptions",
    "ClassificationTask",
    "TaskData",
    "TaskEntry",
    "get_task",
    "register_task",
    "task_names",
]
