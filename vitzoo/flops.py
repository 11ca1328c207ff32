"""Analytic FLOPs: the counting rule and the per-block primitives each model family composes (``flops(cfg)``).

Only matrix products are counted, each as ``2 * M * N * K`` (one multiply and one add per term):

- embedding: a patch / tubelet of ``C * t * p * p`` pixels projected to ``D`` for every token;
- per block, on ``L`` tokens: ``qkv`` ``2 * L * D * 3D``, output projection ``2 * L * D * D``,
  MLP ``2 * L * D * Dm`` twice (``Dm = mlp_ratio * D``);
- attention over ``G`` independent groups of ``S`` tokens (all heads together): scores
  ``2 * G * S * S * D`` plus the weighted sum of values, the same again; the grouping is what
  distinguishes the encoders (joint: one group of all tokens; factorised: frames or locations);
- the classifier head ``2 * D * num_classes`` per clip.

Norms, activations, softmax, residual adds and pooling are not counted (they are ``O(L * D)``, well
under 1% of the total at base size). A training step is counted as three forwards (the backward of a
product costs two: gradients of both operands), less the never-needed input gradient of the
embedding. ``torch.utils.flop_counter.FlopCounterMode`` is not used: it misses fused CPU attention.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from vitzoo.config import TransformerConfig


@dataclass(frozen=True)
class Flops:
    """Forward FLOPs of one model call, by kind of product."""

    embed: int = 0
    qkv: int = 0
    attention: int = 0  # q @ k^T and softmax(.) @ v
    proj: int = 0  # attention output projections (and TimeSformer's temporal_fc)
    mlp: int = 0
    head: int = 0

    @property
    def total(self) -> int:
        """All forward FLOPs."""
        return sum(dataclasses.astuple(self))

    @property
    def train_step(self) -> int:
        """FLOPs of forward + backward: three forwards, minus the embedding's unused input gradient."""
        return 3 * self.total - self.embed

    def __add__(self, other: Flops) -> Flops:
        return Flops(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)))

    def scaled(self, factor: int) -> Flops:
        """These FLOPs repeated ``factor`` times (e.g. per clip -> per batch)."""
        return Flops(*(factor * v for v in dataclasses.astuple(self)))


def matmul_flops(m: int, n: int, k: int) -> int:
    """FLOPs of an ``(m, k) @ (k, n)`` product."""
    return 2 * m * n * k


def attention_flops(*, groups: int, length: int, dim: int) -> int:
    """Scores and weighted sum for ``groups`` independent sequences of ``length`` tokens of width ``dim``."""
    return 2 * matmul_flops(length, length, dim) * groups


def block_flops(cfg: TransformerConfig, *, tokens: int, groups: int, length: int) -> Flops:
    """One pre-norm transformer block on ``tokens = groups * length`` tokens attending within groups."""
    if tokens != groups * length:
        raise ValueError(f"tokens={tokens} != groups={groups} * length={length}")
    d = cfg.embed_dim
    return Flops(
        qkv=matmul_flops(tokens, 3 * d, d),
        attention=attention_flops(groups=groups, length=length, dim=d),
        proj=matmul_flops(tokens, d, d),
        mlp=2 * matmul_flops(tokens, int(d * cfg.mlp_ratio), d),
    )


def attention_only_flops(cfg: TransformerConfig, *, groups: int, length: int) -> Flops:
    """An attention branch (qkv, attention, projection) without the MLP."""
    d, tokens = cfg.embed_dim, groups * length
    return Flops(
        qkv=matmul_flops(tokens, 3 * d, d),
        attention=attention_flops(groups=groups, length=length, dim=d),
        proj=matmul_flops(tokens, d, d),
    )


def embed_flops(*, tokens: int, dim: int, pixels_per_token: int) -> Flops:
    """A linear patch / tubelet embedding: ``pixels_per_token`` values projected to ``dim`` for every token."""
    return Flops(embed=matmul_flops(tokens, dim, pixels_per_token))


def head_flops(*, num_features: int, num_classes: int) -> Flops:
    """The linear classifier on one pooled feature vector (nothing without a head)."""
    return Flops(head=matmul_flops(1, num_classes, num_features) if num_classes > 0 else 0)
