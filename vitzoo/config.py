"""Model configurations as flat dataclasses.

A config fully describes an architecture: ``vitzoo.save`` writes it as JSON into the safetensors
metadata, and ``vitzoo.load`` rebuilds the model from it without being told the architecture name.
Every family's config derives from :class:`BaseConfig` (input size, channels, head, normalisation) and is
registered by the family's model class (``vitzoo.registry.FAMILIES``), so :func:`from_json` finds it by name.
Overrides go through :func:`vitzoo.schema.replace`: unknown names and wrongly typed values raise
:class:`~vitzoo.schema.ConfigError` with close matches.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from vitzoo import schema
from vitzoo.registry import CONFIGS, ENCODERS

IMAGENET_INCEPTION_MEAN = (0.5, 0.5, 0.5)
IMAGENET_INCEPTION_STD = (0.5, 0.5, 0.5)

Activation = Literal["gelu", "gelu_tanh", "quick_gelu"]  # gelu_tanh: the tanh approximation HF ViViT uses
GlobalPool = Literal["token", "avg", "map"]  # map: attention pooling with a learned query (SigLIP), image ViTs only
TemporalInit = Literal["zero", "copy"]
PosEmbed = Literal["learned", "sincos"]  # sincos: VideoMAE's fixed 1-D sinusoid table over the flattened tokens
ACTIVATIONS = typing.get_args(Activation)
GLOBAL_POOLS = typing.get_args(GlobalPool)

# Field names renamed since a config was first written: old name -> new name (old files and keywords keep working).
RENAMED_FIELDS = {"dynamic_img_size": "dynamic_size"}


def pair(size: int | tuple[int, int]) -> tuple[int, int]:
    """``(H, W)`` from an int (square) or an ``(H, W)`` pair."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


@dataclass
class BaseConfig:
    """Fields every model family has: the input, the classifier and the input normalisation.

    ``img_size`` is an int (square frames) or ``(H, W)``. With ``dynamic_size`` a model accepts other input
    sizes (that divide into its patches / tubelets) by interpolating its position tables at run time;
    without it, other sizes raise and ``model.resample(...)`` adapts the model permanently.
    """

    img_size: int | tuple[int, int] = 224
    in_chans: int = 3
    num_classes: int = 1000  # 0: no head, the model returns pooled features (B, num_features)
    drop_rate: float = 0.0  # dropout before the classifier
    dynamic_size: bool = False
    mean: tuple[float, float, float] = IMAGENET_INCEPTION_MEAN
    std: tuple[float, float, float] = IMAGENET_INCEPTION_STD
    # token merging (ToMe): tokens merged per block, an int or a per-block list (0: off); see docs/performance.md
    token_merging: int | tuple[int, ...] = 0
    token_merging_prop_attn: bool = True  # proportional attention while merging (ToMe: off for MAE-pretrained)
    # why this family cannot merge tokens (None: it can); video encoders declare theirs (``merging_refusal``)
    token_merging_refusal: ClassVar[str | None] = None

    @property
    def img_hw(self) -> tuple[int, int]:
        """Frame size ``(H, W)``."""
        return pair(self.img_size)

    @property
    def dynamic_img_size(self) -> bool:
        """timm's name for :attr:`dynamic_size`."""
        return self.dynamic_size

    def validate(self) -> None:
        """Raise :class:`~vitzoo.schema.ConfigError` for inconsistent values."""
        if min(self.img_hw) < 1 or self.in_chans < 1 or self.num_classes < 0:
            raise schema.ConfigError(
                f"img_size={self.img_size}, in_chans={self.in_chans}, num_classes={self.num_classes}: "
                "sizes and channels must be >= 1, num_classes >= 0"
            )
        self.validate_token_merging()

    def validate_token_merging(self) -> None:
        """Refuse a negative or too long ``token_merging`` schedule, or merging where the family cannot merge."""
        r = self.token_merging
        values = (r,) if isinstance(r, int) else r
        if any(v < 0 for v in values):
            raise schema.ConfigError(f"token_merging={r!r}: tokens merged per block must be >= 0")
        depth = getattr(self, "depth", None)
        if depth is not None and not isinstance(r, int) and len(r) > depth:
            raise schema.ConfigError(f"token_merging={list(r)} lists {len(r)} blocks; the model has depth={depth}")
        if any(values) and self.token_merging_refusal is not None:
            raise schema.ConfigError(f"token_merging={r!r}: {self.token_merging_refusal}; use token_merging=0")


@dataclass
class StagedConfig(BaseConfig):
    """A hierarchical family's config (MViT, Video Swin): stages of ``depths[i]`` blocks of width ``widths[i]``,
    both fields of the subclass; the facts derived from that layout."""

    token_merging_refusal: ClassVar[str | None] = (
        "a hierarchical model pools / merges its token grid between stages and its attention needs that grid "
        "(pooled queries, windows), so ToMe's unordered merged tokens do not apply"
    )

    @property
    def embed_dim(self) -> int:
        """Width of the stem's tokens (the first stage's width)."""
        return self.widths[0]

    @property
    def num_stages(self) -> int:
        """Number of stages."""
        return len(self.depths)


@dataclass
class TransformerConfig:
    """Hyper-parameters shared by every block stack of a plain (non-hierarchical) transformer."""

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    qk_norm: bool = False
    init_values: float | None = None  # LayerScale init; None disables LayerScale
    act: Activation = "gelu"
    norm_eps: float = 1e-6
    attn_drop_rate: float = 0.0
    proj_drop_rate: float = 0.0
    drop_path_rate: float = 0.0

    def validate(self) -> None:
        """Raise :class:`~vitzoo.schema.ConfigError` for inconsistent values."""
        if self.embed_dim % self.num_heads:
            raise schema.ConfigError(f"embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}")
        if self.depth < 1:
            raise schema.ConfigError(f"depth must be >= 1, got {self.depth}")


@CONFIGS.register("ViTConfig")
@dataclass
class ViTConfig(BaseConfig, TransformerConfig):
    """An image ViT (key layout identical to timm's ``VisionTransformer``)."""

    patch_size: int = 16
    class_token: bool = True
    global_pool: GlobalPool = "token"  # "token" (class token), "avg" (mean of patch tokens), "map" (attention pool)
    pool_include_prefix: bool = False  # "avg" / "map" pool the prefix tokens too (timm's option), image ViTs only
    fc_norm: bool | None = None  # None: timm's rule, norm after pooling iff global_pool == "avg"
    fc_norm_eps: float | None = None  # eps of the norm after pooling; None: norm_eps (VideoMAE's is 1e-5)
    no_embed_class: bool = False  # positional embedding covers patch tokens only
    pre_norm: bool = False  # LayerNorm before the blocks (CLIP style)
    reg_tokens: int = 0  # register tokens after the class token (DINOv2 with registers), image ViTs only
    dist_token: bool = False  # DeiT's distillation token and its second head, image ViTs only
    resample_antialias: bool = True  # resampled position tables: antialiased bicubic (timm); False: plain (HF DINOv2)
    pos_drop_rate: float = 0.0

    @property
    def grid_hw(self) -> tuple[int, int]:
        """Patch grid ``(h, w)`` of a frame."""
        h, w = self.img_hw
        return h // self.patch_size, w // self.patch_size

    @property
    def use_fc_norm(self) -> bool:
        """Whether LayerNorm is applied after pooling (instead of on every token before it)."""
        return self.global_pool == "avg" if self.fc_norm is None else self.fc_norm

    @property
    def num_prefix_tokens(self) -> int:
        """Tokens before the patch tokens: class, distillation and register tokens."""
        return int(self.class_token) + int(self.dist_token) + self.reg_tokens

    def validate(self) -> None:
        BaseConfig.validate(self)
        TransformerConfig.validate(self)
        h, w = self.img_hw
        if h % self.patch_size or w % self.patch_size:
            raise schema.ConfigError(f"img_size={self.img_size} is not divisible by patch_size={self.patch_size}")
        if self.global_pool == "token" and not self.class_token:
            raise schema.ConfigError("global_pool='token' needs class_token=True (or set global_pool='avg')")
        if self.reg_tokens < 0:
            raise schema.ConfigError(f"reg_tokens must be >= 0, got {self.reg_tokens}")
        if self.dist_token and (not self.class_token or self.global_pool != "token" or self.use_fc_norm):
            raise schema.ConfigError(
                "dist_token=True (DeiT distilled) needs class_token=True, global_pool='token' and no fc_norm"
            )
        if self.global_pool == "map" and self.token_merging != 0:
            raise schema.ConfigError(
                f"token_merging={self.token_merging!r} with global_pool='map': the attention pool would see merged "
                "tokens without their sizes; use global_pool='token' or 'avg', or token_merging=0"
            )


@CONFIGS.register("VideoConfig")
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
    temporal_init: TemporalInit = "zero"  # factorised self-attention: "zero" or "copy" (ViT attention copied)
    pos_embed: PosEmbed = "learned"  # "sincos": fixed, never trained (VideoMAE); encoders list what they implement

    @property
    def num_tubelets(self) -> int:
        """Number of token time steps after the tubelet embedding."""
        return self.num_frames // self.tubelet_size

    @property
    def grid_thw(self) -> tuple[int, int, int]:
        """Token grid ``(T', h, w)`` of a clip."""
        return (self.num_tubelets, *self.grid_hw)

    @property
    def use_fc_norm(self) -> bool:
        """Norm after pooling only when ``fc_norm=True`` (video encoders normalise their tokens by default)."""
        return bool(self.fc_norm)

    def validate(self) -> None:
        super().validate()
        if self.num_frames < 1 or self.num_frames % self.tubelet_size:
            raise schema.ConfigError(
                f"num_frames={self.num_frames} is not a positive multiple of tubelet_size={self.tubelet_size}"
            )
        image_only = {
            f"reg_tokens={self.reg_tokens}": self.reg_tokens,
            "dist_token=True": self.dist_token,
            "global_pool='map'": self.global_pool == "map",
            "pool_include_prefix=True": self.pool_include_prefix,
            "resample_antialias=False": not self.resample_antialias,
        }
        used = [name for name, on in image_only.items() if on]
        if used:
            raise schema.ConfigError(
                f"{', '.join(used)}: image-ViT options the video encoders do not implement (initialising a video "
                "model from such a ViT drops those tokens / that pooling head; video tables resample antialiased)"
            )
        if self.pos_embed != "learned" and self.encoder in ENCODERS:
            supported = getattr(ENCODERS.get(self.encoder), "pos_embed_types", ("learned",))
            if self.pos_embed not in supported:
                raise schema.ConfigError(
                    f"pos_embed={self.pos_embed!r}: the {self.encoder!r} encoder implements {supported}"
                )

    @property
    def token_merging_refusal(self) -> str | None:
        """Why the configured encoder cannot merge tokens (None: it can), as the encoder declares."""
        if self.encoder not in ENCODERS:
            return None
        reason = getattr(ENCODERS.get(self.encoder), "merging_refusal", None)
        return None if reason is None else f"the {self.encoder!r} encoder {reason}"


def _renamed(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with old field names (``dynamic_img_size``) translated to their current names."""
    out = dict(fields)
    for old, new in RENAMED_FIELDS.items():
        if old in out:
            value = out.pop(old)
            if new in out and out[new] != value:
                raise schema.ConfigError(f"both {old}={value!r} and {new}={out[new]!r} given; use {new}")
            out[new] = value
    return out


def replace(cfg: BaseConfig, **overrides: Any) -> BaseConfig:
    """A validated copy of ``cfg`` with ``overrides``; unknown names or bad values raise ``ConfigError``."""
    return schema.replace(cfg, **_renamed(overrides))


def to_json(cfg: BaseConfig) -> str:
    """Serialise a config (with its class name) to JSON."""
    return json.dumps({"class": type(cfg).__name__, "fields": dataclasses.asdict(cfg)}, sort_keys=True)


def from_json(text: str, *, source: str = "the stored config") -> BaseConfig:
    """Inverse of :func:`to_json` (fields type-checked; names of older vitzoo versions translated).

    Text that is not such a config (bad JSON, no ``class`` / ``fields``, an unknown class) raises
    :class:`~vitzoo.schema.ConfigError` naming ``source`` (the file it was read from).
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise schema.ConfigError(f"{source}: the vitzoo config is not valid JSON ({exc}); restore the file") from None
    if not isinstance(data, dict) or not isinstance(data.get("fields"), dict) or not isinstance(data.get("class"), str):
        raise schema.ConfigError(
            f"{source}: the vitzoo config must be a JSON object with 'class' and 'fields' (as vitzoo.save writes it); "
            "restore the file"
        )
    try:
        cls = CONFIGS.get(data["class"])
    except KeyError as exc:
        raise schema.ConfigError(f"{source}: {exc}") from None
    return schema.build(cls, _renamed(data["fields"]), validate=True)
