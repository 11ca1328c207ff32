"""Analytic FLOPs of every vitzoo architecture, from its config: each model family declares its formula.

The counting rule and the per-block primitives are in :mod:`vitzoo.flops`; every family composes them in its
own ``flops(cfg)`` (``VisionTransformer.flops``, ``VideoTransformer.flops`` which adds each encoder's
``flops(cfg)``), so a new family or encoder brings its formula with it. ``torch.utils.flop_counter`` is not used
for the numbers: it misses fused CPU attention (``tests/bench/test_bench.py`` checks every formula against it with
attention written out as matmuls).
"""

from __future__ import annotations

from vitzoo.config import BaseConfig
from vitzoo.flops import Flops, attention_flops, matmul_flops
from vitzoo.models import family_of


def model_flops(cfg: BaseConfig, *, batch: int = 1) -> Flops:
    """Forward FLOPs of the model ``cfg`` describes on ``batch`` images or clips."""
    return family_of(cfg).flops(cfg).scaled(batch)


def num_tokens(cfg: BaseConfig) -> int:
    """Patch / tubelet tokens per image or clip (without class tokens)."""
    return family_of(cfg).num_tokens(cfg)


__all__ = ["Flops", "attention_flops", "matmul_flops", "model_flops", "num_tokens"]
