"""The task registry: recipe name -> how to build the task (and, if it needs its own, the datasets).

A task registers a builder ``build(run, model, data) -> Task`` under a name; a recipe's ``task: {name: ...,
options: {...}}`` selects it, so ``vitzoo train`` (and a later ``vitzoo pretrain``) build any registered task the
same way (:func:`vitzoo.train.recipe.train_from_config`)::

    @register_task("byol", options=BYOLOptions, needs_head=False, datasets=build_view_datasets)
    def build_byol(run, model, data):
        return BYOL(model, **asdict(get_task("byol").parse_options(run.task.options)))

``options`` is the dataclass that ``task.options`` must fit (checked by the recipe loader, unknown keys with
close names); ``needs_head`` says whether ``model.num_classes`` must be >= 1; ``datasets(run, model) ->
TaskData`` replaces the labelled video datasets of :func:`vitzoo.data.build_datasets` (for tasks that
need views of unlabelled clips).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import nn
from torch.utils.data import Dataset

from vitzoo.registry import Registry
from vitzoo.schema import ConfigError, build

if TYPE_CHECKING:
    from vitzoo.train.config import RunConfig
    from vitzoo.train.task import Task


@dataclass
class TaskData:
    """The datasets a task trains and validates on (what ``fit_task`` and ``task.validate`` receive)."""

    train: Dataset
    val: Any = None  # passed to task.validate as is (None: no validation)
    classes: list[str] | None = None


TaskBuilder = Callable[["RunConfig", nn.Module, TaskData], "Task"]
DataBuilder = Callable[["RunConfig", nn.Module], TaskData]


@dataclass(frozen=True)
class TaskEntry:
    """One registered task (see the module docstring)."""

    name: str
    build: TaskBuilder
    options: type | None = None  # dataclass of task.options; None: the task takes no options
    needs_head: bool = False  # model.num_classes must be >= 1
    datasets: DataBuilder | None = None  # None: the labelled video datasets of vitzoo.data.build_datasets

    def parse_options(self, options: dict[str, Any]) -> Any:
        """``options`` as an instance of :attr:`options` (validated), or None for a task without options."""
        if self.options is None:
            if options:
                raise ConfigError(f"task {self.name!r} takes no options, got task.options={options}")
            return None
        return build(self.options, options, prefix="task.options.", validate=True)


# Filled as the modules that define tasks are imported: classification with vitzoo.train, the self-supervised
# methods with vitzoo.ssl (so a program that reads their recipes imports vitzoo.ssl first, as the CLI does).
TASKS: Registry[TaskEntry] = Registry("task", error=ConfigError, prefix="task.name: ")


def register_task(
    name: str, *, options: type | None = None, needs_head: bool = False, datasets: DataBuilder | None = None
) -> Callable[[TaskBuilder], TaskBuilder]:
    """Decorator registering a task builder under ``name`` (a second registration of a name raises)."""

    def decorator(builder: TaskBuilder) -> TaskBuilder:
        TASKS.add(name, TaskEntry(name, builder, options=options, needs_head=needs_head, datasets=datasets))
        return builder

    return decorator


def get_task(name: str) -> TaskEntry:
    """The task registered as ``name``; :class:`ConfigError` with close names when there is none (and, before
    ``vitzoo.ssl`` is imported, how to register the self-supervised tasks)."""
    try:
        return TASKS.get(name)
    except ConfigError as exc:
        if "vitzoo.ssl" in sys.modules:
            raise
        hint = "the self-supervised methods register their tasks when vitzoo.ssl is imported: `import vitzoo.ssl` first"
        raise ConfigError(f"{exc}; {hint}") from None


def task_names() -> list[str]:
    """Names of the registered tasks, sorted."""
    return TASKS.names()
