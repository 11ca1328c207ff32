"""Model configurations as flat dataclasses.

A config fully describes an architecture: ``vitzoo.save`` writes it as JSON into the safetensors
metadata, and ``vitzoo.load`` rebuilds the model from it without being told the architecture name.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass
from typing import Any

IMAGENET_INCEPTION_MEAN = (0.5, 0.5, 0.5)
IMAGENET_INCEPTION_STD = (0.5, 0.5, 0.5)

ACTIVATIONS = ("gelu", "gelu_tanh", "quick_gelu")
GLOBAL_POOLS = ("token", "avg")


@dataclass
class TransformerConfig:
    """Hyper-parameters shared by every transformer block stack."""

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    qk_norm: bool = False
    init_values: float | None = None  # LayerScale init; None disables LayerScale
    act: str = "gelu"  # one of ACTIVATIONS ("gelu_tanh" is the tanh approximation HF ViViT uses)
    norm_eps: float = 1e-6
    attn_drop_rate: float = 0.0
    proj_drop_rate: float = 0.0
    drop_path_rate: float = 0.0

    def validate(self) -> None:
        """Raise ``ValueError`` for inconsistent values."""
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}")
        if self.act not in ACTIVATIONS:
            raise ValueError(f"act={self.act!r}; expected one of {ACTIVATIONS}")
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1, got {self.depth}")


@dataclass
class ViTConfig(TransformerConfig):
    """An image ViT (key layout identical to timm's ``VisionTransformer``)."""

    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    num_classes: int = 1000
    class_token: bool = True
    global_pool: str = "token"  # "token" (class token) or "avg" (mean of patch tokens)
    fc_norm: bool | None = None  # None: timm's rule, norm after pooling iff global_pool == "avg"
    no_embed_class: bool = False  # positional embedding covers patch tokens only
    pre_norm: bool = False  # LayerNorm before the blocks (CLIP style)
    drop_rate: float = 0.0  # dropout before the classifier
    pos_drop_rate: float = 0.0
    dynamic_img_size: bool = False  # interpolate positional embeddings to the input's grid at run time
    mean: tuple[float, float, float] = IMAGENET_INCEPTION_MEAN
    std: tuple[float, float, float] = IMAGENET_INCEPTION_STD

    @property
    def grid_size(self) -> int:
        """Number of patches along one side of the image."""
        return self.img_size // self.patch_size

    @property
    def use_fc_norm(self) -> bool:
        """Whether LayerNorm is applied after pooling (instead of on every token before it)."""
        return self.global_pool == "avg" if self.fc_norm is None else self.fc_norm

    def validate(self) -> None:
        super().validate()
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size={self.img_size} is not divisible by patch_size={self.patch_size}")
        if self.global_pool not in GLOBAL_POOLS:
            raise ValueError(f"global_pool={self.global_pool!r}; expected one of {GLOBAL_POOLS}")
        if self.global_pool == "token" and not self.class_token:
            raise ValueError("global_pool='token' needs class_token=True")


@dataclass
class VideoConfig(ViTConfig):
    """A video transformer: tubelet embedding, one of the registered encoders, a linear head.

    ``encoder`` names the encoder class (see ``vitzoo.encoders``); the variants differ only by it.
    """

    encoder: str = "joint"
    num_frames: int = 32
    tubelet_size: int = 2
    temporal_depth: int = 4  # factorised encoder / VTN: layers of the temporal transformer
    temporal_num_heads: int | None = None  # None: same as num_heads
    temporal_init: str = "zero"  # factorised self-attention: "zero" or "copy" (ViT attention copied)
    mean: tuple[float, float, float] = IMAGENET_INCEPTION_MEAN
    std: tuple[float, float, float] = IMAGENET_INCEPTION_STD

    @property
    def num_tubelets(self) -> int:
        """Number of token time steps after the tubelet embedding."""
        return self.num_frames // self.tubelet_size

    def validate(self) -> None:
        super().validate()
        if self.num_frames % self.tubelet_size:
            raise ValueError(f"num_frames={self.num_frames} is not divisible by tubelet_size={self.tubelet_size}")
        if self.temporal_init not in ("zero", "copy"):
            raise ValueError(f"temporal_init={self.temporal_init!r}; expected 'zero' or 'copy'")


CONFIG_CLASSES: dict[str, type[ViTConfig]] = {"ViTConfig": ViTConfig, "VideoConfig": VideoConfig}


def replace(cfg: ViTConfig, **overrides: Any) -> ViTConfig:
    """Return a validated copy of ``cfg`` with ``overrides``; unknown names raise ``TypeError``."""
    names = {f.name for f in dataclasses.fields(cfg)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        hints = {k: difflib.get_close_matches(k, names, n=3) for k in unknown}
        detail = "; ".join(f"{k!r} (did you mean {', '.join(v)}?)" if v else repr(k) for k, v in hints.items())
        raise TypeError(f"{type(cfg).__name__} has no option {detail}")
    new = dataclasses.replace(cfg, **overrides)
    new.validate()
    return new


def to_json(cfg: ViTConfig) -> str:
    """Serialise a config (with its class name) to JSON."""
    return json.dumps({"class": type(cfg).__name__, "fields": dataclasses.asdict(cfg)}, sort_keys=True)


def from_json(text: str) -> ViTConfig:
    """Inverse of :func:`to_json`; tuples are restored for tuple-typed fields."""
    data = json.loads(text)
    cls = CONFIG_CLASSES[data["class"]]
    fields = data["fields"]
    for name in ("mean", "std"):
        if name in fields:
            fields[name] = tuple(fields[name])
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(fields) - known
    if unknown:
        raise ValueError(f"config has fields this vitzoo version does not know: {sorted(unknown)}")
    cfg = cls(**fields)
    cfg.validate()
    return cfg
