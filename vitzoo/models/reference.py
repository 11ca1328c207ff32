"""Other libraries' implementations of a vitzoo architecture, for the benchmarks (a family fact).

A :class:`Reference` turns a vitzoo config into the other library's model, names the input layout it expects
and extracts logits from its output. Each family registers its references in its zoo file
(``vitzoo.registry.REFERENCES``) under the architecture keys it covers (``model_class.architecture(cfg)``:
``"image"`` for the ViT, the encoder name for video transformers), so a new family adds its own without
touching the benchmark package. The libraries are imported only when a reference is built (they are test
and benchmark extras, never runtime dependencies). A reference that cannot represent a config option raises
``ValueError`` rather than silently benchmarking a different model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

# vitzoo activation name -> transformers' ACT2FN name for the same function.
HF_ACTIVATIONS = {"gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh", "quick_gelu": "quick_gelu"}


@dataclass(frozen=True)
class Reference:
    """How to build and call one implementation of an architecture.

    ``layout`` is the einops pattern that turns vitzoo's input (``b c h w`` images or ``b c t h w``
    clips) into this implementation's (applied once, outside the timed region, then made contiguous).
    ``overrides`` are config fields both sides of a comparison take so that the models are identical.
    """

    name: str
    label: str  # human-readable library name for tables
    build: Callable[[Any], nn.Module]
    architectures: tuple[str, ...] = ()  # the architecture keys this reference implements
    layout: str | None = None
    logits: Callable[[Any], torch.Tensor] = lambda out: out
    overrides: dict[str, Any] = field(default_factory=dict)


def require(cfg: Any, reference: str, **expected: Any) -> None:
    """Raise unless every named config field has the value the reference implements."""
    wrong = {k: getattr(cfg, k) for k, v in expected.items() if getattr(cfg, k) != v}
    if wrong:
        raise ValueError(f"{reference} cannot represent {wrong}; it implements {expected}")


def plain_transformer(cfg: Any, reference: str) -> None:
    """Raise unless ``cfg`` has no qk-norm, LayerScale or stochastic depth (options most references lack)."""
    require(cfg, reference, qk_norm=False, init_values=None, drop_path_rate=0.0)


def square(cfg: Any, reference: str) -> int:
    """The side of ``cfg``'s square frames; raises for non-square ones (the references take one int)."""
    h, w = cfg.img_hw
    if h != w:
        raise ValueError(f"{reference} takes square frames; got img_size={cfg.img_size}")
    return h


def hf_transformer_fields(cfg: Any) -> dict:
    """The HF config fields both HF video models share (width, depth, heads, MLP, activation, norm, bias)."""
    return dict(
        hidden_size=cfg.embed_dim,
        num_hidden_layers=cfg.depth,
        num_attention_heads=cfg.num_heads,
        intermediate_size=int(cfg.embed_dim * cfg.mlp_ratio),
        hidden_act=HF_ACTIVATIONS[cfg.act],
        layer_norm_eps=cfg.norm_eps,
        qkv_bias=cfg.qkv_bias,
    )
