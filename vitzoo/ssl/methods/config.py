"""Configuration shared by every method (each method's config dataclass extends it).

Configs are built and checked by :mod:`vitzoo.schema` (:func:`vitzoo.ssl.methods.method_config`): unknown keys
and mistyped values raise there; :meth:`MethodConfig.validate` adds the range rules, and every method calls it
on the config it is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from vitzoo.schema import ConfigError


def check_positive(**values: float | None) -> None:
    """Raise :class:`ConfigError` for any value that is not ``> 0`` (``None`` is allowed: "use the default")."""
    for name, value in values.items():
        if value is not None and not value > 0:
            raise ConfigError(f"{name} must be > 0, got {value}")


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
        """Raise :class:`ConfigError` for values out of range."""
        check_positive(knn_k=self.knn_k, knn_temperature=self.knn_temperature)
