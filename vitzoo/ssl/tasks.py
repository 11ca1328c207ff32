"""The self-supervised methods as recipe tasks: ``task: {name: simclr | supcon | byol | simsiam | vicreg | videomae |
mae}``.

Each method of :data:`vitzoo.ssl.methods.METHODS` is registered with the task registry of
:mod:`vitzoo.train.tasks` under its name, with

* options: the method's config plus ``views`` and ``knn_memory`` (:mod:`vitzoo.ssl.options`);
* datasets: multi-view training samples and a kNN memory / query pair (:func:`vitzoo.ssl.data.ssl_datasets`);
* a model without head (``model.num_classes: 0``), whose pooled features the method trains and kNN validates.

So ``vitzoo pretrain --config configs/simclr_vivit_joint_micro_motion.yaml`` (or ``vitzoo train`` with the
same recipe) trains through the same engine as classification: ``--set``, ``--resume``, ``torchrun``, metrics,
plots and checkpoints alike. The best checkpoint is the one with the highest kNN top-1; every epoch logs the
epoch means of the method's collapse indicators (``feature_std``, ``embedding_std``).

The masked autoencoders (``videomae``, ``mae``) take other options and datasets: one augmented clip and its masks
per sample instead of views (:mod:`vitzoo.ssl.masked_data`).
"""

from __future__ import annotations

from torch import nn

from vitzoo.schema import ConfigError
from vitzoo.ssl.data import ssl_datasets
from vitzoo.ssl.masked_data import MAEOptions, VideoMAEOptions, masked_datasets
from vitzoo.ssl.methods import MASKED, METHODS, SSLMethod
from vitzoo.ssl.options import num_views_needed, task_options
from vitzoo.train.config import RunConfig
from vitzoo.train.tasks.registry import TaskBuilder, TaskData, get_task, register_task

SELF_SUPERVISED = tuple(METHODS)  # the tasks `vitzoo pretrain` accepts


def _builder(name: str) -> TaskBuilder:
    method_cls = METHODS[name][0]

    def build(run: RunConfig, model: nn.Module, data: TaskData) -> SSLMethod:
        if run.model.num_classes != 0:
            raise ConfigError(
                f"task {name!r} trains a backbone without classifier head: set model.num_classes: 0 "
                f"(got {run.model.num_classes})"
            )
        options = get_task(name).parse_options(run.task.options)
        task = method_cls(model, options)
        if name not in MASKED:
            num_views_needed(task.min_views, options.views)
        return task

    build.__name__ = f"build_{name}"
    build.__doc__ = f"The {method_cls.__name__} task of a recipe (``task.options``: {method_cls.__name__}Options)."
    return build


MASKED_OPTIONS = {"videomae": VideoMAEOptions, "mae": MAEOptions}
for _name in METHODS:
    if _name in MASKED:
        register_task(_name, options=MASKED_OPTIONS[_name], datasets=masked_datasets)(_builder(_name))
    else:
        register_task(_name, options=task_options(METHODS[_name][1]), datasets=ssl_datasets)(_builder(_name))
