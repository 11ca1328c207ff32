"""The machinery the ``transformers`` converters share: HF config access, key tables (rules) and their application.

Key tables are written against the layout of HF weight files (what ``save_pretrained`` writes and the Hub serves,
the same in transformers 4 and 5; transformers 5 renames some modules in memory, and converts back when saving).
A rule names the vitzoo key, the HF keys it is made of and how they combine (e.g. HF's separate query / key /
value projections concatenated into vitzoo's fused ``qkv``); :func:`apply_rules` raises for an HF tensor no rule
uses (unless listed as dropped) and for one a rule needs that the checkpoint lacks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from vitzoo.errors import CheckpointFileError, UnsupportedFeatureError

# HF ``hidden_act`` -> vitzoo ``act``. gelu_fast / gelu_new / gelu_pytorch_tanh are all the tanh approximation.
HF_ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_fast": "gelu_tanh",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "quick_gelu": "quick_gelu",
}

# One mapping rule: vitzoo key, the HF keys it is made of, and how (None: the single HF tensor unchanged).
Rule = tuple[str, tuple[str, ...], Callable[..., torch.Tensor] | None]

QKV = ("query", "key", "value")
# The layers of a BERT-style HF ViT block (ViT, ViViT, VideoMAE files): vitzoo name -> HF name.
BERT_BLOCK = {
    "attn.proj": "attention.output.dense",
    "norm1": "layernorm_before",
    "norm2": "layernorm_after",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
}


class HFConfig:
    """Attribute access to an HF ``config.json`` dict, falling back to the transformers defaults given.

    The defaults matter for old Hub configs written before a field existed;
    ``tests/checkpoints/test_convert_hf_image.py::test_default_tables_match_transformers`` checks the tables against
    the transformers config classes.
    """

    def __init__(self, data: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
        self._data = {**defaults, **data}

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_data"][name]
        except KeyError:
            raise AttributeError(f"the HF config has no {name!r} and vitzoo knows no default for it") from None

    def get(self, name: str, default: Any = None) -> Any:
        return self._data.get(name, default)


def fused_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Separate ``(D, D)`` query / key / value projections -> vitzoo's fused ``(3D, D)`` (or biases ``(3D,)``)."""
    return torch.cat([q, k, v], dim=0)


def fused_qv_bias(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Query and value biases (VideoMAE; the key has none) -> a fused ``(3D,)`` bias with a zero key part.

    Exact, and stays so under training: a bias on the keys adds the same ``q . b`` to every score of a query,
    which the softmax cancels, so its gradient is zero.
    """
    return torch.cat([q, torch.zeros_like(q), v])


def frame_kernel(weight: torch.Tensor) -> torch.Tensor:
    """A per-frame ``Conv2d`` kernel ``(D, C, p, p)`` -> the equivalent 1-frame tubelet kernel ``(D, C, 1, p, p)``."""
    return weight.unsqueeze(2)


def raise_unsupported(model_name: str, found: Mapping[str, bool]) -> None:
    """``NotImplementedError`` naming every option in ``found`` that is present."""
    names = [name for name, present in found.items() if present]
    if names:
        raise UnsupportedFeatureError(f"{model_name} uses options vitzoo does not implement: {'; '.join(names)}")


def square(value: Any) -> int:
    """An int, or the common value of an all-equal list / tuple (callers check squareness first)."""
    return int(value[0]) if isinstance(value, (list, tuple)) else int(value)


def is_square(value: Any) -> bool:
    return not isinstance(value, (list, tuple)) or len(set(value)) == 1


def transformer_fields(hf_cfg: Any, model_name: str, *, mlp_hidden: int | None = None) -> dict[str, Any]:
    """The :class:`~vitzoo.config.TransformerConfig` fields (and ``in_chans``) of an HF ViT-like config.

    ``mlp_hidden``: the MLP width when the config does not say it as ``intermediate_size`` (DINOv2).
    """
    dim, heads = hf_cfg.hidden_size, hf_cfg.num_attention_heads
    hidden = hf_cfg.intermediate_size if mlp_hidden is None else mlp_hidden
    head_dim = hf_cfg.get("head_dim")
    act = hf_cfg.hidden_act
    raise_unsupported(
        model_name,
        {
            f"hidden_act={act!r} (supported: {', '.join(HF_ACTIVATIONS)})": not isinstance(act, str)
            or act not in HF_ACTIVATIONS,
            f"hidden_size={dim} not divisible by num_attention_heads={heads}": dim % heads != 0,
            f"head_dim={head_dim} != hidden_size / num_attention_heads": head_dim is not None
            and head_dim * heads != dim,
            f"MLP width {hidden} not expressible as int(hidden_size * mlp_ratio)": int(dim * (hidden / dim)) != hidden,
        },
    )
    return dict(
        embed_dim=dim,
        depth=hf_cfg.num_hidden_layers,
        num_heads=heads,
        mlp_ratio=hidden / dim,
        act=HF_ACTIVATIONS[act],
        norm_eps=float(hf_cfg.layer_norm_eps),
        in_chans=hf_cfg.num_channels,
        attn_drop_rate=float(hf_cfg.attention_probs_dropout_prob),
        proj_drop_rate=float(hf_cfg.hidden_dropout_prob),
        pos_drop_rate=float(hf_cfg.hidden_dropout_prob),
    )


def block_rules(src: str, dst: str, layers: Mapping[str, str], *, qkv: str, qkv_bias: bool) -> list[Rule]:
    """One block's rules: the fused ``attn.qkv`` from ``{src}{qkv}.{query,key,value}`` and ``layers`` one to one
    (a vitzoo name starting with ``ls`` is a LayerScale vector, mapped to its ``gamma``)."""
    rules: list[Rule] = [(f"{dst}attn.qkv.weight", tuple(f"{src}{qkv}.{n}.weight" for n in QKV), fused_qkv)]
    if qkv_bias:
        rules.append((f"{dst}attn.qkv.bias", tuple(f"{src}{qkv}.{n}.bias" for n in QKV), fused_qkv))
    for ours, theirs in layers.items():
        if ours.startswith("ls"):  # LayerScale: one vector, no bias
            rules.append((f"{dst}{ours}.gamma", (f"{src}{theirs}",), None))
        else:
            rules += [(f"{dst}{ours}.{p}", (f"{src}{theirs}.{p}",), None) for p in ("weight", "bias")]
    return rules


def prefixed(rules: list[Rule], prefix: str) -> list[Rule]:
    """``rules`` with every HF key under ``prefix`` (the backbone of a ``...For...Classification`` model)."""
    return [(dst, tuple(prefix + s for s in srcs), fn) for dst, srcs, fn in rules]


def apply_rules(rules: list[Rule], hf_state: dict[str, torch.Tensor], *, dropped: set[str]) -> dict[str, torch.Tensor]:
    """vitzoo state dict from ``hf_state`` by the key table; every HF key must be used or listed in ``dropped``."""
    missing = sorted({s for _, srcs, _ in rules for s in srcs} - set(hf_state))
    if missing:
        more = f", ... {len(missing) - 5} more" if len(missing) > 5 else ""
        raise CheckpointFileError(f"the HF state dict lacks tensors the mapping needs: {missing[:5]}{more}")
    out, used = {}, set()
    for dst, srcs, combine in rules:  # a rule without sources computes its tensor (VideoMAE's fixed table)
        tensors = [hf_state[s] for s in srcs]
        used.update(srcs)
        out[dst] = (combine or (lambda x: x))(*tensors).detach().clone()
    leftover = sorted(set(hf_state) - used - dropped)
    if leftover:
        raise UnsupportedFeatureError(f"HF tensors with no vitzoo counterpart: {leftover}")
    return out
