"""Training tasks and their registry (see :mod:`vitzoo.train.task` for the interface).

* ``classification`` (:class:`ClassificationTask`): supervised fine-tuning, the default of every recipe;
* self-supervised methods register themselves from :mod:`vitzoo.ssl` (imported on the first lookup).

A recipe names its task with ``task: {name: ..., options: {...}}``; :func:`get_task` returns the registered
:class:`TaskEntry` (builder, options dataclass, whether it needs a classifier head, its datasets).
"""

from vitzoo.train.tasks.classification import ClassificationTask, fit  # registers "classification"
from vitzoo.train.tasks.registry import TaskData, TaskEntry, get_task, register_task, task_names

__all__ = ["ClassificationTask", "TaskData", "TaskEntry", "fit", "get_task", "register_task", "task_names"]
