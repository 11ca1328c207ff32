"""``transformers`` image families -> vitzoo ``ViTConfig`` + key tables: ViT, DINOv2, DINOv2 with registers.

Same shape as :mod:`vitzoo.checkpoints.hf_video`: ``*_config(hf_cfg, num_classes=..., head=...)`` and
``*_rules(cfg, hf_cfg)`` for the backbone's keys (no ``vit.`` prefix).

DINOv2 (both) interpolates its position table to every input size, so the converted ViT has ``dynamic_size=True``
and outputs are identical at every size: ``Dinov2WithRegistersModel`` resamples as timm does (antialiased bicubic,
vitzoo's default), ``Dinov2Model`` with plain bicubic (``resample_antialias=False``).
"""

from __future__ import annotations

from typing import Any

from vitzoo.checkpoints.hf_rules import (
    BERT_BLOCK,
    Rule,
    block_rules,
    is_square,
    raise_unsupported,
    square,
    transformer_fields,
)
from vitzoo.config import ViTConfig

_IMAGE_DEFAULTS = dict(
    num_channels=3,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    hidden_act="gelu",
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    qkv_bias=True,
    image_size=224,
)
# transformers' defaults of the fields read below (checked against the config classes by the tests)
VIT_DEFAULTS = dict(_IMAGE_DEFAULTS, patch_size=16, intermediate_size=3072, layer_norm_eps=1e-12)
DINOV2_DEFAULTS = dict(
    _IMAGE_DEFAULTS,
    patch_size=14,
    mlp_ratio=4,
    layer_norm_eps=1e-6,
    layerscale_value=1.0,
    drop_path_rate=0.0,
    use_swiglu_ffn=False,
)
DINOV2_REG_DEFAULTS = dict(DINOV2_DEFAULTS, patch_size=16, num_register_tokens=4)

# DINOv2 block: vitzoo name -> HF name (``ls*``: LayerScale vectors)
DINOV2_BLOCK = {
    "attn.proj": "attention.output.dense",
    "norm1": "norm1",
    "norm2": "norm2",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
    "ls1": "layer_scale1.lambda1",
    "ls2": "layer_scale2.lambda1",
}


def _geometry(hf_cfg: Any, name: str) -> tuple[int, int]:
    img, p = hf_cfg.image_size, hf_cfg.patch_size
    raise_unsupported(
        name,
        {f"non-square image_size={img!r}": not is_square(img), f"non-square patch_size={p!r}": not is_square(p)},
    )
    img, p = square(img), square(p)
    raise_unsupported(name, {f"image_size={img} not divisible by patch_size={p} (HF drops the rest)": img % p != 0})
    return img, p


def _trunk_rules(cfg: ViTConfig, block: dict[str, str]) -> list[Rule]:
    rules: list[Rule] = [
        ("patch_embed.proj.weight", ("embeddings.patch_embeddings.projection.weight",), None),
        ("patch_embed.proj.bias", ("embeddings.patch_embeddings.projection.bias",), None),
        ("norm.weight", ("layernorm.weight",), None),
        ("norm.bias", ("layernorm.bias",), None),
    ]
    for i in range(cfg.depth):
        rules += block_rules(
            f"encoder.layer.{i}.", f"blocks.{i}.", block, qkv="attention.attention", qkv_bias=cfg.qkv_bias
        )
    return rules


# --------------------------------------------------------------------------------------------------- ViT
def vit_config(hf_cfg: Any, *, num_classes: int, head: bool = True) -> ViTConfig:
    """A :class:`ViTConfig` equivalent to an HF ``ViTConfig`` (class token, token pooling, final norm)."""
    img, p = _geometry(hf_cfg, "ViT")
    return ViTConfig(
        img_size=img,
        patch_size=p,
        qkv_bias=bool(hf_cfg.qkv_bias),
        num_classes=num_classes,
        **transformer_fields(hf_cfg, "ViT"),
    )


def vit_rules(cfg: ViTConfig, hf_cfg: Any) -> list[Rule]:
    """Key table: HF ``ViTModel`` file (no prefix) -> vitzoo ``VisionTransformer``."""
    embeddings: list[Rule] = [
        ("cls_token", ("embeddings.cls_token",), None),
        ("pos_embed", ("embeddings.position_embeddings",), None),
    ]
    return embeddings + _trunk_rules(cfg, BERT_BLOCK)


# ------------------------------------------------------------------------------------------------ DINOv2
def dinov2_config(hf_cfg: Any, *, num_classes: int, head: bool = True) -> ViTConfig:
    """A :class:`ViTConfig` equivalent to an HF ``Dinov2Config`` / ``Dinov2WithRegistersConfig``."""
    name = "DINOv2"
    raise_unsupported(name, {"use_swiglu_ffn=True (SwiGLU MLP)": bool(hf_cfg.use_swiglu_ffn)})
    img, p = _geometry(hf_cfg, name)
    regs = int(hf_cfg.get("num_register_tokens", 0))
    return ViTConfig(
        img_size=img,
        patch_size=p,
        qkv_bias=bool(hf_cfg.qkv_bias),
        init_values=float(hf_cfg.layerscale_value),
        drop_path_rate=float(hf_cfg.drop_path_rate),
        reg_tokens=regs,
        no_embed_class=regs > 0,  # the class token's position is folded into the token (see dinov2_rules)
        dynamic_size=True,
        resample_antialias=regs > 0,  # Dinov2WithRegistersModel antialiases, Dinov2Model does not
        num_classes=num_classes,
        **transformer_fields(hf_cfg, name, mlp_hidden=int(hf_cfg.hidden_size * hf_cfg.mlp_ratio)),
    )


def dinov2_rules(cfg: ViTConfig, hf_cfg: Any) -> list[Rule]:
    """Key table: HF ``Dinov2Model`` / ``Dinov2WithRegistersModel`` file (no prefix) -> vitzoo ViT.

    With registers, HF adds the position table to ``[class, patches]`` and then inserts the registers after the
    class token; vitzoo (as timm) adds a patch-only table (``no_embed_class``) with the class token's position
    entry folded into the token: the same sum at every input size, since that entry is never resampled.
    """
    pos = "embeddings.position_embeddings"
    if cfg.reg_tokens:
        embeddings: list[Rule] = [
            ("cls_token", ("embeddings.cls_token", pos), lambda cls, pe: cls + pe[:, :1]),
            ("pos_embed", (pos,), lambda pe: pe[:, 1:]),
            ("reg_token", ("embeddings.register_tokens",), None),
        ]
    else:
        embeddings = [("cls_token", ("embeddings.cls_token",), None), ("pos_embed", (pos,), None)]
    return embeddings + _trunk_rules(cfg, DINOV2_BLOCK)
