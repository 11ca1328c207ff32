"""Analytic FLOPs of every vitzoo architecture, counted from its config.

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
from collections.abc import Callable
from dataclasses import dataclass

from vitzoo.config import VideoConfig, ViTConfig


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


def block_flops(cfg: ViTConfig, *, tokens: int, groups: int, length: int) -> Flops:
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


def attention_only_flops(cfg: ViTConfig, *, groups: int, length: int) -> Flops:
    """An attention branch (qkv, attention, projection) without the MLP."""
    d, tokens = cfg.embed_dim, groups * length
    return Flops(
        qkv=matmul_flops(tokens, 3 * d, d),
        attention=attention_flops(groups=groups, length=length, dim=d),
        proj=matmul_flops(tokens, d, d),
    )


def _embed(cfg: ViTConfig, tokens: int, tubelet: int = 1) -> Flops:
    return Flops(embed=matmul_flops(tokens, cfg.embed_dim, cfg.in_chans * tubelet * cfg.patch_size**2))


def _head(cfg: ViTConfig) -> Flops:
    return Flops(head=matmul_flops(1, cfg.num_classes, cfg.embed_dim) if cfg.num_classes > 0 else 0)


def vit_flops(cfg: ViTConfig) -> Flops:
    """An image ViT on one image."""
    n = cfg.grid_size**2
    length = n + int(cfg.class_token)
    blocks = block_flops(cfg, tokens=length, groups=1, length=length).scaled(cfg.depth)
    return _embed(cfg, n) + blocks + _head(cfg)


def joint_flops(cfg: VideoConfig) -> Flops:
    """ViViT model 1: one sequence of ``P + T*N`` tokens."""
    length = cfg.num_tubelets * cfg.grid_size**2 + int(cfg.class_token)
    return block_flops(cfg, tokens=length, groups=1, length=length).scaled(cfg.depth)


def per_frame_flops(cfg: VideoConfig) -> Flops:
    """A ViT on each of ``T`` frames: ``T`` sequences of ``P + N`` tokens (frame averaging, model 2's first stage)."""
    t, p = cfg.num_tubelets, int(cfg.class_token)
    spatial_len = cfg.grid_size**2 + p
    return block_flops(cfg, tokens=t * spatial_len, groups=t, length=spatial_len).scaled(cfg.depth)


def fact_enc_flops(cfg: VideoConfig) -> Flops:
    """ViViT model 2: ``T`` spatial sequences of ``P + N`` tokens, then one temporal sequence of ``P + T``."""
    t, p = cfg.num_tubelets, int(cfg.class_token)
    spatial = per_frame_flops(cfg)
    temporal_cfg = cfg if cfg.temporal_num_heads is None else dataclasses.replace(cfg, num_heads=cfg.temporal_num_heads)
    temporal = block_flops(temporal_cfg, tokens=t + p, groups=1, length=t + p).scaled(cfg.temporal_depth)
    return spatial + temporal


def fact_sa_flops(cfg: VideoConfig) -> Flops:
    """ViViT model 3: attention within each of ``T`` frames, then within each of ``N`` locations, then MLP."""
    t, n = cfg.num_tubelets, cfg.grid_size**2
    block = (
        block_flops(cfg, tokens=t * n, groups=t, length=n)  # spatial attention + MLP
        + attention_only_flops(cfg, groups=n, length=t)  # temporal attention
    )
    return block.scaled(cfg.depth)


def fact_dot_flops(cfg: VideoConfig) -> Flops:
    """ViViT model 4: half the heads (``D/2`` of the width) attend in space, half in time."""
    t, n, d = cfg.num_tubelets, cfg.grid_size**2, cfg.embed_dim
    block = dataclasses.replace(
        block_flops(cfg, tokens=t * n, groups=1, length=t * n),
        attention=attention_flops(groups=t, length=n, dim=d // 2) + attention_flops(groups=n, length=t, dim=d // 2),
    )
    return block.scaled(cfg.depth)


def divided_flops(cfg: VideoConfig) -> Flops:
    """TimeSformer divided space-time attention (Bertasius et al., 2021), as in its reference code.

    Per block: temporal attention over ``T`` frames at each of ``N`` locations followed by the extra
    ``temporal_fc`` (``D x D``); spatial attention over ``1 + N`` tokens per frame (the class token is
    copied into every frame); the MLP over all ``1 + T*N`` tokens.
    """
    t, n, d = cfg.num_tubelets, cfg.grid_size**2, cfg.embed_dim
    temporal = attention_only_flops(cfg, groups=n, length=t) + Flops(proj=matmul_flops(t * n, d, d))
    spatial = attention_only_flops(cfg, groups=t, length=n + 1)
    mlp = Flops(mlp=2 * matmul_flops(t * n + 1, int(d * cfg.mlp_ratio), d))
    return (temporal + spatial + mlp).scaled(cfg.depth)


# Encoder name -> FLOPs of the encoder (the embedding and head are added by :func:`model_flops`).
ENCODER_FLOPS: dict[str, Callable[[VideoConfig], Flops]] = {
    "joint": joint_flops,
    "fact_enc": fact_enc_flops,
    "fact_sa": fact_sa_flops,
    "fact_dot": fact_dot_flops,
    "divided": divided_flops,
    "frame_avg": per_frame_flops,
}


def model_flops(cfg: ViTConfig, *, batch: int = 1) -> Flops:
    """Forward FLOPs of the model ``cfg`` describes on ``batch`` images or clips."""
    if not isinstance(cfg, VideoConfig):
        return vit_flops(cfg).scaled(batch)
    if cfg.encoder not in ENCODER_FLOPS:
        raise KeyError(f"no FLOP formula for encoder {cfg.encoder!r}; known: {sorted(ENCODER_FLOPS)}")
    tokens = cfg.num_tubelets * cfg.grid_size**2
    per_clip = _embed(cfg, tokens, cfg.tubelet_size) + ENCODER_FLOPS[cfg.encoder](cfg) + _head(cfg)
    return per_clip.scaled(batch)


def num_tokens(cfg: ViTConfig) -> int:
    """Patch / tubelet tokens per image or clip (without class tokens)."""
    n = cfg.grid_size**2
    return cfg.num_tubelets * n if isinstance(cfg, VideoConfig) else n
