"""The interface every vitzoo model implements, image or video, in timm's vocabulary.

A model is ``stem -> encoder -> pooling -> head``. The family (the model class) owns its stem and its encoder;
everything after the encoder is shared here:

* ``forward_features(x)``: unpooled tokens ``(B, P + L, D)``: ``P = num_prefix_tokens`` prefix (class) tokens,
  then the ``L`` tokens of the final feature grid, flattened ``(t h w)`` (``(h w)`` for images); the layout is
  :attr:`ZooModel.output_fmt` (``"NLC"``; the image Swin's is timm's Swin's, ``"NHWC"``: ``(B, h, w, D)``);
* ``forward_head(x, pre_logits=False)``: pool (class token or mean of the grid tokens), optional norm,
  dropout, linear head of width :attr:`num_features`; ``forward(x) = forward_head(forward_features(x))``;
* ``forward_intermediates(x, indices, norm, output_fmt, ...)``: per-block (or per-stage) feature maps,
  ``NCHW`` / ``NHWC`` for images, ``NCTHW`` / ``NTHWC`` for videos, ``NLC`` tokens for either;
* ``input_shape`` (``(C, H, W)`` or ``(C, T, H, W)``) and ``modality`` (``"image"`` or ``"video"``): the one way to
  ask what a model takes; ``num_features``, ``reset_classifier``, ``set_grad_checkpointing``, ``no_weight_decay``;
* the rest of timm's vocabulary, so timm's tools work (docs/timm.md): ``num_classes``, ``head_hidden_size``,
  ``get_classifier``, ``pretrained_cfg`` / ``default_cfg``, ``feature_info``, ``prune_intermediate_layers``,
  ``group_matcher``.

A family implements ``forward_features``, ``num_taps`` and ``forward_taps`` (the feature maps of the blocks or
stages asked for), ``feature_info``, ``prune_taps`` and ``group_matcher`` (its layer groups), and its facts:
``flops(cfg)`` (analytic FLOPs), ``num_tokens(cfg)`` and ``architecture(cfg)`` (the key benchmark references are
registered under).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from einops import rearrange
from timm.models._features import feature_take_indices
from torch import nn

from vitzoo.config import BaseConfig, replace
from vitzoo.errors import UnsupportedFeatureError
from vitzoo.flops import Flops
from vitzoo.layers.init import init_vit_weights
from vitzoo.layers.token_merging import weighted_mean
from vitzoo.schema import check_choice

# A feature tap: one block's (or stage's) output as a channels-last grid (B, [T,] h, w, D) and its prefix tokens.
Tap = tuple[torch.Tensor, torch.Tensor | None]

OUTPUT_FORMATS = {"image": ("NCHW", "NHWC", "NLC"), "video": ("NCTHW", "NTHWC", "NLC")}
# Parameter names (last component) never weight-decayed: position tables and class tokens.
NO_WEIGHT_DECAY = frozenset({"pos_embed", "cls_token", "time_embed", "temporal_pos_embed"})


def linear_head(num_features: int, num_classes: int) -> nn.Module:
    """A freshly initialised ``Linear(num_features, num_classes)`` (identity for ``num_classes=0``)."""
    head = nn.Linear(num_features, num_classes) if num_classes > 0 else nn.Identity()
    head.apply(init_vit_weights)
    return head


def format_map(grid: torch.Tensor, fmt: str) -> torch.Tensor:
    """A channels-last grid ``(B, *grid, D)`` in ``fmt``: channels first, channels last, or flat tokens ``NLC``."""
    if fmt == "NLC":
        return rearrange(grid, "b ... d -> b (...) d")
    if fmt in ("NCHW", "NCTHW"):
        return torch.movedim(grid, -1, 1).contiguous()
    return grid


class ZooModel(nn.Module):
    """Base class of every vitzoo model (see the module docstring).

    Subclasses set, in ``__init__``: ``num_features``, ``num_prefix_tokens``, ``global_pool`` (``"token"`` or
    ``"avg"``), ``fc_norm``, ``head_drop`` and ``head`` (use :func:`linear_head`); a family whose evaluation
    preprocessing or stem differs overrides the class attributes ``interpolation``, ``crop_pct``, ``first_conv``.
    """

    modality: ClassVar[str] = "image"
    # the layout of forward_features (timm's attribute): "NLC" tokens; a family whose timm counterpart returns a map
    # (the image Swin: "NHWC") says so and pools it in its own pool()
    output_fmt: ClassVar[str] = "NLC"
    no_weight_decay_names: ClassVar[frozenset[str]] = NO_WEIGHT_DECAY
    # why one exported graph cannot serve other input sizes (None: ONNX export with dynamic_size works)
    export_fixed_size_reason: ClassVar[str | None] = None
    # timm's pretrained_cfg facts of the family's evaluation preprocessing (vitzoo's eval_transform: short-side
    # resize to the input size, centre crop) and of its stem
    interpolation: ClassVar[str] = "bilinear"
    crop_pct: ClassVar[float] = 1.0
    first_conv: ClassVar[str] = "patch_embed.proj"
    num_features: int
    num_prefix_tokens: int
    global_pool: str

    def __init__(self, cfg: BaseConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.arch_name = ""
        self.pretrained_tags: dict[str, str] = {}  # where the weights came from (hf_hub_id, license), when known

    # ----------------------------------------------------------------------------------- questions
    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input at the configured size: ``(C, H, W)`` for images, ``(C, T, H, W)`` for videos."""
        return self.input_shape_for(self.cfg)

    @classmethod
    def input_shape_for(cls, cfg: BaseConfig) -> tuple[int, ...]:
        """:attr:`input_shape` of the model ``cfg`` describes, without building it."""
        frames = (cfg.num_frames,) if cls.modality == "video" else ()
        return (cfg.in_chans, *frames, *cfg.img_hw)

    def size_multiple(self) -> tuple[int, ...]:
        """Per spatio-temporal axis, what input sizes must be a multiple of (``dynamic_size`` only)."""
        return (1,) * (len(self.input_shape) - 1)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is a batch this model can take (see ``BaseConfig.dynamic_size``)."""
        expected = self.input_shape
        axes = "(B, C, T, H, W)" if self.modality == "video" else "(B, C, H, W)"
        if x.ndim != len(expected) + 1 or x.shape[1] != expected[0]:
            raise ValueError(
                f"expected {self.modality} input {axes} = (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}"
            )
        sizes = tuple(x.shape[2:])
        if sizes == expected[1:]:
            return
        if not self.cfg.dynamic_size:
            raise ValueError(
                f"input {axes} = {tuple(x.shape)} does not match the model's size {expected[1:]}; build it with "
                "dynamic_size=True to accept other sizes, or call model.resample(...) to change its size"
            )
        multiple = self.size_multiple()
        if any(s < m or s % m for s, m in zip(sizes, multiple, strict=True)):
            raise ValueError(f"input sizes {sizes} must be positive multiples of {multiple} (patch / tubelet size)")

    # ----------------------------------------------------------------------------------- timm's vocabulary
    @property
    def num_classes(self) -> int:
        """Width of the classifier (0: none); the config's, kept in sync by :meth:`reset_classifier`."""
        return self.cfg.num_classes

    @property
    def head_hidden_size(self) -> int:
        """Width of the features the classifier takes (``forward_head(pre_logits=True)``), as timm's."""
        return self.num_features

    def get_classifier(self) -> nn.Module:
        """The classifier (``nn.Identity`` after ``reset_classifier(0)``)."""
        return self.head

    @property
    def pretrained_cfg(self) -> dict:
        """timm's ``pretrained_cfg``: the preprocessing and layout facts timm's tools read
        (``timm.data.resolve_model_data_config``), filled from the model's config (mean / std adopted from a
        loaded checkpoint included); video models add ``num_frames``, which timm ignores."""
        cfg = self.cfg
        out = dict(
            architecture=self.arch_name or type(self).__name__,
            input_size=(cfg.in_chans, *cfg.img_hw),
            mean=tuple(cfg.mean),
            std=tuple(cfg.std),
            interpolation=self.interpolation,
            crop_pct=self.crop_pct,
            crop_mode="center",
            num_classes=cfg.num_classes,
            first_conv=self.first_conv,
            classifier="head",
            fixed_input_size=not cfg.dynamic_size,
            modality=self.modality,
            **self.pretrained_tags,
        )
        if self.modality == "video":
            out["num_frames"] = self.input_shape[1]
        return out

    @property
    def default_cfg(self) -> dict:
        """timm's older name for :attr:`pretrained_cfg`."""
        return self.pretrained_cfg

    # ----------------------------------------------------------------------------------- head
    def pool_choices(self) -> tuple[str, ...]:
        """The ``global_pool`` values :meth:`reset_classifier` accepts (``""``: unpooled tokens, as timm's)."""
        return ("", "avg", "token") if self.num_prefix_tokens else ("", "avg")

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, P + L, D)`` -> ``(B, D)``: the class token, or the mean of the grid tokens (``""``: unchanged)."""
        if self.global_pool == "":
            return x
        if self.global_pool == "token":
            return x[:, 0]
        p, sizes = self.num_prefix_tokens, self.token_sizes  # merged tokens: weighted by their sizes (ToMe's MAE)
        return weighted_mean(x[:, p:], None if sizes is None else sizes[:, p:])

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool, (fc-)norm, dropout and classify the output of :meth:`forward_features`."""
        x = self.head_drop(self.fc_norm(self.pool(x)))
        return x if pre_logits else self.head(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Input batch -> unpooled tokens ``(B, P + L, D)``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the head with a fresh one for ``num_classes`` (0: no head, ``forward`` returns pooled features).

        ``global_pool`` (timm's): one of :meth:`pool_choices`; ``""`` keeps every token (``forward_head`` then
        returns ``(B, P + L, num_classes)``), ``"avg"`` / ``"token"`` / ``"map"`` pool as the config's field does.
        The new pooling is the model's, not its config's: ``vitzoo.save`` / ``vitzoo.load`` restore the config's.
        """
        if global_pool is not None:
            choices = self.pool_choices()
            if global_pool not in choices:
                raise ValueError(
                    f"global_pool={global_pool!r}: {type(self).__name__} pools with one of {list(choices)}"
                )
            self.global_pool = global_pool  # the model's pooling only (as timm's): the config, which the encoder's
            # own pooling may read (per-frame summaries), keeps its value
        self.cfg.num_classes = num_classes
        self.head = linear_head(self.num_features, num_classes)

    # ----------------------------------------------------------------------------------- token merging
    def set_token_merging(self, r: int | Sequence[int], prop_attn: bool = True) -> None:
        """Switch token merging (ToMe) on a built model: ``r`` tokens merged per block, an int or a per-block list
        (0: off), with proportional attention (``prop_attn``; ToMe turns it off for MAE-pretrained models).

        Sets the config's ``token_merging`` / ``token_merging_prop_attn`` (so ``vitzoo.save`` keeps them). A
        family that cannot merge raises ``ConfigError`` in one line saying why. See docs/performance.md.
        """
        new = replace(self.cfg, token_merging=r if isinstance(r, int) else tuple(r), token_merging_prop_attn=prop_attn)
        self.cfg.token_merging, self.cfg.token_merging_prop_attn = new.token_merging, new.token_merging_prop_attn
        self.apply_token_merging()

    def apply_token_merging(self) -> None:
        """Make the blocks merge as the config's ``token_merging`` says (families that merge override this)."""

    @property
    def merging(self) -> bool:
        """Whether token merging is on (the tokens then form no grid: see :meth:`forward_features`)."""
        return False

    def check_not_merging(self, what: str) -> None:
        """Refuse ``what`` in one line while token merging is on (it needs each token at its grid position)."""
        if self.merging:
            raise UnsupportedFeatureError(
                f"{self.arch_name or type(self).__name__}: {what} needs every token at its grid position, but token "
                f"merging is on (token_merging={self.cfg.token_merging!r}); switch it off with "
                "model.set_token_merging(0)"
            )

    @property
    def token_sizes(self) -> torch.Tensor | None:
        """Input patches per token ``(B, P + L', 1)`` of the last :meth:`forward_features`, when its tokens were
        merged (None otherwise); ``avg`` pooling weights the tokens by them."""
        return None

    # ----------------------------------------------------------------------------------- training helpers
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute block activations in backward to save memory (every submodule with such a switch)."""
        for module in self.modules():
            if hasattr(module, "grad_checkpointing"):
                module.grad_checkpointing = enable

    def group_matcher(self, coarse: bool = False) -> dict:
        """timm's layer groups (``stem``, then block groups in order; unmatched parameters, the norms and head,
        last), numbered as ``vitzoo.train.optim.layer_ids`` numbers layers, so timm's
        ``create_optimizer_v2(layer_decay=...)`` gives vitzoo's lr scales. ``coarse``: one group per stage."""
        raise NotImplementedError(f"{type(self).__name__} declares no layer groups")

    def no_weight_decay(self) -> set[str]:
        """Names of the parameters that should not be weight-decayed (position tables, class tokens)."""
        return {name for name, _ in self.named_parameters() if name.rsplit(".", 1)[-1] in self.no_weight_decay_names}

    # ----------------------------------------------------------------------------------- intermediates
    @property
    def num_taps(self) -> int:
        """How many blocks (or stages) :meth:`forward_intermediates` can return."""
        raise NotImplementedError

    @property
    def feature_info(self) -> list[dict]:
        """timm's ``feature_info``, one dict per tap: ``module`` (where it is taken), ``num_chs`` (channels),
        ``reduction`` (input pixels per map cell along H); video taps add ``temporal_reduction`` (frames per
        map step) and ``axes`` (``"thw"``: a space-time map; ``"t"``: a time-only map of 1 x 1 cells)."""
        raise NotImplementedError

    def prune_taps(self, keep: int) -> None:
        """Drop every block (or stage) after the first ``keep`` taps (see :meth:`prune_intermediate_layers`)."""
        raise NotImplementedError

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """timm's backbone pruning: keep the layers up to the last tap in ``indices`` (as
        :meth:`forward_intermediates` reads them), optionally the final norm and the head; returns the absolute
        tap indices (negative ones are invalid after pruning). A pruned model is a feature extractor: its config
        still describes the full model, so save it as a state dict, not with ``vitzoo.save``."""
        take, max_index = self.take_indices(indices)
        self.prune_taps(max_index + 1)
        if prune_norm and isinstance(getattr(self, "norm", None), nn.Module):
            self.norm = nn.Identity()
        if prune_head:
            self.fc_norm = nn.Identity()
            self.reset_classifier(0, "")
        return take

    def take_indices(self, indices: int | Sequence[int] | None) -> tuple[list[int], int]:
        """timm's ``feature_take_indices`` over :attr:`num_taps`, a bad ``indices`` raising ``ValueError``."""
        try:
            return feature_take_indices(self.num_taps, indices)
        except AssertionError as exc:  # timm asserts; a bad argument is a ValueError here
            raise ValueError(f"indices={indices!r}: {exc} ({type(self).__name__} has {self.num_taps} taps)") from None

    def forward_taps(
        self, x: torch.Tensor, take: set[int], *, norm: bool, stop_at: int | None
    ) -> tuple[torch.Tensor, list[Tap]]:
        """Final tokens (as :meth:`forward_features`, or where it stopped) and the taps in ``take``, in order."""
        raise NotImplementedError

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        *,
        return_prefix_tokens: bool = False,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str | None = None,
        intermediates_only: bool = False,
    ):
        """Feature maps of the blocks (or stages) named by ``indices`` (timm's interface).

        Args:
            indices: the last ``n`` blocks for an int, those listed (negative counts from the end), all for None.
            return_prefix_tokens: each item becomes ``(map, prefix tokens (B, P, D) or None)``.
            norm: apply the model's final norm to every map.
            stop_early: stop after the last block asked for (the returned features are then those at that point).
            output_fmt: ``NCHW`` (default) / ``NHWC`` for images, ``NCTHW`` (default) / ``NTHWC`` for videos,
                ``NLC`` (flat tokens) for either. While token merging is on only ``NLC`` is accepted (each block's
                merged tokens ``(B, L_i, D)``; per-frame merging puts the frames' tokens in a row).
            intermediates_only: return only the list of maps.

        Returns:
            ``(features, maps)``, with ``features`` as :meth:`forward_features` returns them, or ``maps``.
        """
        fmts = OUTPUT_FORMATS[self.modality]
        fmt = check_choice("output_fmt", output_fmt or fmts[0], fmts)
        if self.merging and fmt != "NLC":
            raise ValueError(
                f"output_fmt={fmt!r}: token merging is on, so the tokens form no grid; use output_fmt='NLC' "
                "or model.set_token_merging(0)"
            )
        take, max_index = self.take_indices(indices)
        self.check_input(x)
        final, taps = self.forward_taps(x, set(take), norm=norm, stop_at=max_index if stop_early else None)
        maps = [format_map(grid, fmt) for grid, _ in taps]
        out = [(m, prefix) for m, (_, prefix) in zip(maps, taps, strict=True)] if return_prefix_tokens else maps
        return out if intermediates_only else (final, out)

    # ----------------------------------------------------------------------------------- family facts
    @classmethod
    def flops(cls, cfg: BaseConfig) -> Flops:
        """Analytic forward FLOPs of one input (see :mod:`vitzoo.flops`)."""
        raise NotImplementedError(f"{cls.__name__} declares no FLOP formula")

    @classmethod
    def num_tokens(cls, cfg: BaseConfig) -> int:
        """Patch / tubelet tokens per input entering the encoder (class tokens excluded)."""
        raise NotImplementedError

    @classmethod
    def architecture(cls, cfg: BaseConfig) -> str:
        """The key that benchmark references are registered under (``vitzoo.registry.REFERENCES``)."""
        return cls.__name__
