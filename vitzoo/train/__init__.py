"""Fine-tuning, evaluation and their recipes.

>>> from vitzoo.train import fit, evaluate
>>> result = fit(model, train_set, val_set=val_set, out_dir="runs/demo", epochs=3, lr=1e-3)  # doctest: +SKIP
>>> print(evaluate(model, val_set))  # doctest: +SKIP

* :func:`fit` (``loop.py``): AdamW + warmup/cosine, layer-wise lr decay, clipping, accumulation, bf16 autocast,
  gradient checkpointing, EMA, Mixup/CutMix, DDP under ``torchrun``, atomic checkpoints and exact resume.
* :func:`evaluate` (``eval.py``): multi-view averaging, top-1/top-5, confusion matrix PNG.
* :class:`TrainConfig`, :class:`RunConfig`, :func:`load_run_config` (``config.py``): the YAML recipes.
"""

from vitzoo.train.config import ConfigError, DataSpec, ModelSpec, RunConfig, TrainConfig, load_run_config
from vitzoo.train.eval import EvalResult, evaluate
from vitzoo.train.loop import FitResult, TrainState, fit
from vitzoo.train.optim import build_optimizer, build_scheduler, layer_ids, param_groups

__all__ = [
    "ConfigError",
    "DataSpec",
    "EvalResult",
    "FitResult",
    "ModelSpec",
    "RunConfig",
    "TrainConfig",
    "TrainState",
    "build_optimizer",
    "build_scheduler",
    "evaluate",
    "fit",
    "layer_ids",
    "load_run_config",
    "param_groups",
]
