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
