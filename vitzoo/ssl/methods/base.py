"""What the self-supervised methods share: batch unpacking, view folding, metrics, kNN validation.

A method is a :class:`vitzoo.train.task.Task` around any vitzoo backbone created with ``num_classes=0``
(``model(x) -> (B, D)``). A batch is ``(views, labels)`` (or ``views`` alone) with views
``(B, V, C, H, W)`` for images or ``(B, V, C, T, H, W)`` for video. The heads see the ``V`` views folded into
the batch, ``(B, V, ...) -> (B V, ...)``, so their BatchNorm layers normalise over all views of the batch
together (as SimCLR's and BYOL's reference code do). The backbone sees them folded too if it has BatchNorm;
otherwise one view at a time, which gives the same features (every layer then works per sample) at a lower
peak memory (the transient buffers of a pass are those of ``B`` samples, not ``B V``; measured in the README,
"A SimCLR step against lightly"). Validation is weighted kNN on frozen features (:mod:`vitzoo.ssl.knn`).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch
from einops import rearrange
from torch import nn

from vitzoo.schema import ConfigError
from vitzoo.ssl.knn import evaluate_knn
from vitzoo.ssl.methods.config import MethodConfig
from vitzoo.ssl.metrics import embedding_std
from vitzoo.train.task import Task, ValidationContext


def feature_dim(model: nn.Module) -> int:
    """Width of ``model``'s pooled features: ``model.num_features``, else ``model.cfg.embed_dim``."""
    width = getattr(model, "num_features", None)
    if width is None:
        width = getattr(getattr(model, "cfg", None), "embed_dim", None)
    if width is None:
        raise ValueError(f"cannot tell the feature width of {type(model).__name__}: give it a num_features attribute")
    return int(width)


def unpack(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(views, labels)``, ``[views, labels]`` or ``views`` -> ``(views, labels or None)``."""
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, tuple | list) and len(batch) == 2:
        return batch[0], batch[1]
    raise ValueError(f"expected a batch (views, labels) or views, got {type(batch).__name__}")


def has_batch_norm(model: nn.Module) -> bool:
    """Whether any layer of ``model`` normalises over the batch (BatchNorm of any dimension, SyncBatchNorm)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


class SSLMethod(Task):
    """Base of the self-supervised tasks: the constructor, :meth:`embed`, :meth:`project`, kNN :meth:`validate`.

    A method sets :attr:`config_class` (and :attr:`min_views` if it is not 2); its constructor calls
    ``super().__init__(model, cfg)``, which validates the config (``config_class()`` when ``cfg`` is None) and
    keeps it as ``self.cfg``, then builds its heads and loss from ``self.cfg`` and ``self.num_features``.

    Args:
        model: the backbone, ``model(x) -> (B, D)``.
        cfg: the method's options (a :attr:`config_class`; None: the defaults).
        min_views, knn_k, knn_temperature: override the class's :attr:`min_views` and the config's kNN options
            (the keywords of the former constructor).
    """

    monitor = "knn_top1"
    higher_is_better = True
    config_class: type[MethodConfig] = MethodConfig
    min_views: int = 2  # views per sample the method needs
    min_batch: int = 1  # samples per batch the loss needs (contrastive: 2), over all processes when it gathers them
    min_local_batch: int = 1  # samples per process the loss needs (VICReg's variance: 2)
    batch_reason: str = ""  # why, for the error message

    def __init__(
        self,
        model: nn.Module,
        cfg: MethodConfig | None = None,
        *,
        min_views: int | None = None,
        knn_k: int | None = None,
        knn_temperature: float | None = None,
    ) -> None:
        cfg = cfg if cfg is not None else self.config_class()
        cfg.validate()
        super().__init__(model)
        self.cfg = cfg
        self.num_features = feature_dim(model)
        if min_views is not None:
            self.min_views = min_views
        self.knn_k = cfg.knn_k if knn_k is None else knn_k
        self.knn_temperature = cfg.knn_temperature if knn_temperature is None else knn_temperature
        self.run_record.update({f"task.options.{k}": v for k, v in asdict(cfg).items()})

    def check_batch_size(self, batch_size: int, world_size: int) -> None:
        """:class:`~vitzoo.schema.ConfigError` when ``batch_size`` samples per process (on ``world_size`` processes)
        are too few for the loss (:attr:`min_batch`, :attr:`min_local_batch`) or for BatchNorm layers (2 per
        process: they normalise over the batch)."""
        name = type(self).__name__
        gathers = bool(getattr(self.cfg, "gather_distributed", False)) and world_size > 1
        total = batch_size * world_size if gathers else batch_size
        if total < self.min_batch:
            where = f"over {world_size} processes" if gathers else "per process"
            raise ConfigError(
                f"{name} cannot train with train.batch_size={batch_size}: {self.batch_reason} needs at least "
                f"{self.min_batch} samples per batch {where}; set train.batch_size >= {self.min_batch}"
            )
        local, why = self.min_local_batch, self.batch_reason
        if has_batch_norm(self) and local < 2:
            local, why = 2, "its BatchNorm layers (they normalise over the batch)"
        if batch_size < local:
            raise ConfigError(
                f"{name} cannot train with train.batch_size={batch_size}: {why} needs at least {local} samples "
                f"per process; set train.batch_size >= {local}"
            )

    def split(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Unpack a batch and check that its views are ``(B, V, C, [T,] H, W)`` with ``V >= min_views``."""
        views, labels = unpack(batch)
        if views.ndim not in (5, 6) or views.shape[1] < self.min_views:
            raise ValueError(
                f"expected views (B, V, C, H, W) or (B, V, C, T, H, W) with V >= {self.min_views}, "
                f"got shape {tuple(views.shape)}"
            )
        return views, labels

    def embed(self, views: torch.Tensor, model: nn.Module | None = None) -> torch.Tensor:
        """Backbone features of every view: ``(B, V, ...) -> (B, V, D)`` (``model`` defaults to ``self.model``).

        One pass over the folded views ``(B V, ...)`` for a backbone with BatchNorm, one pass per view otherwise
        (see the module docstring)."""
        model = self.model if model is None else model
        if has_batch_norm(model):
            features = model(rearrange(views, "b v ... -> (b v) ..."))  # (B V, D)
            self._check_features(features, views.shape[0] * views.shape[1])
            return rearrange(features, "(b v) d -> b v d", b=views.shape[0])
        per_view = [model(view) for view in views.unbind(1)]  # V x (B, D)
        for features in per_view:
            self._check_features(features, views.shape[0])
        return torch.stack(per_view, dim=1)  # (B, V, D)

    def _check_features(self, features: torch.Tensor, rows: int) -> None:
        if features.shape != (rows, self.num_features):
            raise ValueError(
                f"the backbone returned shape {tuple(features.shape)}, expected ({rows}, {self.num_features}): "
                "create it with num_classes=0"
            )

    @staticmethod
    def project(head: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Apply a head to every view at once: ``(B, V, D) -> (B, V, D')``."""
        out = head(rearrange(x, "b v d -> (b v) d"))  # (B V, D')
        return rearrange(out, "(b v) d -> b v d", b=x.shape[0])

    @staticmethod
    def collapse_metrics(features: torch.Tensor, embeddings: torch.Tensor) -> dict[str, torch.Tensor]:
        """SimSiam's collapse indicator on backbone features and on the head's embeddings (the loss's input)."""
        return {"feature_std": embedding_std(features), "embedding_std": embedding_std(embeddings)}

    def validate(self, data: Any, ctx: ValidationContext) -> dict[str, float]:
        """Weighted kNN accuracy of ``ctx.model``'s features; ``data`` is ``(train_set, val_set)``.

        Both are datasets of single-view ``(input, label)`` samples: the first is the memory bank, the second
        the queries. Under ``torchrun`` each process extracts the features of its shard and gathers the rest, so
        every process computes the same numbers on the whole sets.
        """
        if not (isinstance(data, tuple | list) and len(data) == 2):
            raise ValueError("SSL validation needs data = (train_set, val_set) of labelled single-view samples")
        result = evaluate_knn(
            ctx.model,
            data[0],
            data[1],
            k=self.knn_k,
            temperature=self.knn_temperature,
            batch_size=ctx.batch_size,
            device=ctx.device,
            num_workers=ctx.num_workers,
            amp=ctx.amp,
            progress=ctx.progress,
        )
        return {"knn_top1": result.top1, "knn_top5": result.top5, "num_samples": float(result.num_samples)}
