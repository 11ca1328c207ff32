"""Configuration shared by every method (each method's config dataclass extends it).

Configs are built and checked by :mod:`vitzoo.schema` (:func:`vitzoo.ssl.methods.method_config`): unknown keys
and mistyped values raise there; :meth:`MethodConfig.validate` adds the range rules, and every method calls it
on the config it is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from vitzoo.schema import check_range


def check_positive(**values: float | None) -> None:
    """:func:`vitzoo.schema.check_range` ``> 0`` for every value (``None`` is allowed: "use the default")."""
    for name, value in values.items():
        check_range(name, value, low=0, low_open=True, optional=True)


@dataclass
class MethodConfig:
    """Options every self-supervised method has.

    Attributes:
        knn_k: neighbours of the kNN validation (Wu et al., 2018: 200).
        knn_temperature: temperature of the kNN vote weights ``exp(s / T)`` (0.07).
    """

    knn_k: int = 200
    knn_temperature: float = 0.07

    def validate(self) -> None:
        """Raise :class:`~vitzoo.schema.ConfigError` for values out of range."""
        check_positive(knn_k=self.knn_k, knn_temperature=self.knn_temperature)


@dataclass
class ContrastiveConfig(MethodConfig):
    """Options of the temperature-scaled contrastive methods (SimCLR, SupCon): a projection head and the loss.

    Attributes:
        temperature: the loss's ``tau`` (0.1, as in SimCLR and SupCon).
        proj_hidden_dim: hidden width of the projection head (None: the backbone's width, as in the papers).
        proj_out_dim: embedding width the loss sees (128).
        gather_distributed: contrast against the samples of every process (SimCLR's global batch).
    """

    temperature: float = 0.1
    proj_hidden_dim: int | None = None
    proj_out_dim: int = 128
    gather_distributed: bool = True

    def validate(self) -> None:
        """Raise :class:`~vitzoo.schema.ConfigError` for values out of range."""
        super().validate()
        check_positive(
            temperature=self.temperature, proj_hidden_dim=self.proj_hidden_dim, proj_out_dim=self.proj_out_dim
        )


@dataclass
class PredictorConfig(MethodConfig):
    """Options of the methods with a projector and a predictor (BYOL, SimSiam); each sets its own widths.

    Attributes:
        proj_hidden_dim, proj_out_dim: projector widths.
        pred_hidden_dim: predictor hidden width (its output is ``proj_out_dim``).
    """

    proj_hidden_dim: int = 4096
    proj_out_dim: int = 256
    pred_hidden_dim: int = 4096

    def validate(self) -> None:
        """Raise :class:`~vitzoo.schema.ConfigError` for values out of range."""
        super().validate()
        check_positive(
            proj_hidden_dim=self.proj_hidden_dim, proj_out_dim=self.proj_out_dim, pred_hidden_dim=self.pred_hidden_dim
        )
