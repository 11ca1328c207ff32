"""Configuration shared by every method (each method's config dataclass extends it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class MethodConfig:
    """Options every self-supervised method has.

    Attributes:
        knn_k: neighbours of the kNN validation (Wu et al., 2018: 200).
        knn_temperature: temperature of the kNN vote weights ``exp(s / T)`` (0.07).
    """

    knn_k: int = 200
    knn_temperature: float = 0.07
