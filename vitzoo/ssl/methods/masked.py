"""Masked autoencoding as a training task: VideoMAE / MAE-ST for video, MAE for images.

VideoMAE (Tong et al., 2022, https://arxiv.org/abs/2203.12602): tube masking at 90%, the encoder sees the visible
tokens only, a narrow decoder reconstructs the per-patch-normalised pixels of the masked tubelets. MAE-ST
(Feichtenhofer et al., 2022, https://arxiv.org/abs/2205.09113): random space-time masking at 90%. MAE (He et al.,
2022, https://arxiv.org/abs/2111.06377): random masking at 75% on images. VideoMAE V2 (Wang et al., 2023,
https://arxiv.org/abs/2303.16727) adds a decoder mask: the loss covers only part of the masked tokens ("running
cell" masks at 50%).

The task wraps :class:`vitzoo.models.masked_autoencoder.MaskedAutoencoder` around a plain vitzoo backbone (created
with ``num_classes=0``): ``task.model`` is that backbone, and it is what the engine saves, so the weights written
after pre-training load with ``vitzoo.load`` and fine-tune through ``vitzoo train``. The decoder travels with the
training state (it is resumed, not saved as weights).

A batch is a dict ``{"clip": (B, C, [T,] H, W), "mask": (B, L) bool, "label": (B,)}`` (plus ``"decoder_mask"``
when the config asks for one), True = masked; :class:`vitzoo.ssl.masked_data.MaskedSamples` draws the masks per
sample from the loader's ``(index, seed)`` pair, so a run draws the same masks with any number of workers.
Validation is the kNN of every self-supervised method on the backbone's pooled features, plus a reconstruction
picture (:mod:`vitzoo.ssl.reconstruction`) in the validation's report folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from vitzoo.data.masking import make_mask_generator
from vitzoo.models.masked_autoencoder import build_masked_autoencoder
from vitzoo.schema import check_range
from vitzoo.ssl.methods.base import SSLMethod
from vitzoo.ssl.methods.config import MethodConfig, check_positive
from vitzoo.train.distributed import rank
from vitzoo.train.task import StepOutput, ValidationContext


@dataclass
class MaskedConfig(MethodConfig):
    """Options of the masked-autoencoder tasks (defaults: VideoMAE's; :class:`MAEConfig` has MAE's).

    Attributes:
        mask: ``"tube"`` (VideoMAE: one spatial mask repeated over time) or ``"random"`` (MAE-ST, MAE: any
            tokens of the grid).
        mask_ratio: share of the tokens hidden from the encoder (VideoMAE 0.9, MAE-ST 0.9, MAE 0.75).
        decoder_dim: decoder width (None: half the encoder's, VideoMAE's choice).
        decoder_depth: decoder blocks (4).
        decoder_heads: decoder attention heads (None: the builder's default for ``decoder_dim``).
        norm_pix_loss: reconstruct each patch's pixels normalised by their own mean and std (VideoMAE, MAE).
        decoder_mask: ``"running_cell"`` (VideoMAE V2: the loss covers only the tokens a running-cell mask
            keeps) or None (every masked token).
        decoder_mask_ratio: share of the tokens the decoder mask leaves out (VideoMAE V2: 0.5).
        picture_clips: clips (or images) in the reconstruction picture of every validation (0: no picture).
    """

    mask: Literal["tube", "random"] = "tube"
    mask_ratio: float = 0.9
    decoder_dim: int | None = None
    decoder_depth: int = 4
    decoder_heads: int | None = None
    norm_pix_loss: bool = True
    decoder_mask: Literal["running_cell"] | None = None
    decoder_mask_ratio: float = 0.5
    picture_clips: int = 4

    def validate(self) -> None:
        """Raise :class:`~vitzoo.schema.ConfigError` for values out of range."""
        super().validate()
        check_range("mask_ratio", self.mask_ratio, low=0, high=1, low_open=True, high_open=True)
        check_range("decoder_mask_ratio", self.decoder_mask_ratio, low=0, high=1, low_open=True, high_open=True)
        check_positive(decoder_dim=self.decoder_dim, decoder_depth=self.decoder_depth)
        check_positive(decoder_heads=self.decoder_heads)
        check_range("picture_clips", self.picture_clips, low=0)


@dataclass
class VideoMAEConfig(MaskedConfig):
    """VideoMAE's defaults: tube masking at 90%."""


@dataclass
class MAEConfig(MaskedConfig):
    """MAE's defaults (images): random masking at 75%."""

    mask: Literal["tube", "random"] = "random"
    mask_ratio: float = 0.75


def token_grid(model: nn.Module) -> tuple[int, int, int]:
    """The ``(t, h, w)`` token grid of ``model`` at its configured input size (``t = 1`` for an image model)."""
    cfg = model.cfg
    if getattr(model, "modality", "image") == "video":
        return tuple(cfg.grid_thw)
    return (1, *cfg.grid_hw)


def mask_generators(cfg: MaskedConfig, model: nn.Module) -> tuple[Callable, Callable | None]:
    """The encoder's and the decoder's mask generators (``torch.Generator -> (L,) bool``, True = masked) for
    ``model``'s token grid; the second is None when every masked token is reconstructed."""
    grid = token_grid(model)
    encoder = make_mask_generator(cfg.mask, grid=grid, ratio=cfg.mask_ratio)
    if cfg.decoder_mask is None:
        return encoder, None
    return encoder, make_mask_generator(cfg.decoder_mask, grid=grid, ratio=cfg.decoder_mask_ratio)


class MaskedModeling(SSLMethod):
    """A masked autoencoder over any backbone that supports token dropping (see the module docstring).

    ``training_step(batch)`` returns the reconstruction loss (MSE over the masked, or decoder-masked, tokens);
    it logs no other metric.
    """

    config_class = VideoMAEConfig
    min_views = 1

    def __init__(self, model: nn.Module, cfg: MaskedConfig | None = None) -> None:
        super().__init__(model, cfg)
        c = self.cfg
        self.mae = build_masked_autoencoder(
            model,
            decoder_dim=c.decoder_dim,
            decoder_depth=c.decoder_depth,
            decoder_heads=c.decoder_heads,
            norm_pix_loss=c.norm_pix_loss,
        )
        if self.mae.encoder is not model:
            raise TypeError("build_masked_autoencoder must keep the backbone as .encoder (it is what gets saved)")

    def mask_generators(self) -> tuple[Callable, Callable | None]:
        """:func:`mask_generators` of this task's config and backbone."""
        return mask_generators(self.cfg, self.model)

    # ------------------------------------------------------------------ training
    def training_step(self, batch: Any) -> StepOutput:
        clips, mask, decoder_mask = self.unpack_masked(batch)
        loss = self.mae.loss(clips, mask, decoder_mask=decoder_mask)
        return StepOutput(loss, {}, batch_size=clips.shape[0])

    def unpack_masked(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(clips, mask, decoder_mask or None)`` of a batch dict; a one-line error for anything else."""
        if not isinstance(batch, dict) or "clip" not in batch or "mask" not in batch:
            got = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
            raise ValueError(
                f"a masked-modeling batch is a dict with 'clip' and 'mask' (vitzoo.ssl.masked_data.MaskedSamples), "
                f"got {got}"
            )
        decoder_mask = batch.get("decoder_mask")
        if (decoder_mask is None) != (self.cfg.decoder_mask is None):
            raise ValueError(
                f"decoder_mask={self.cfg.decoder_mask!r} but the batch {'lacks' if decoder_mask is None else 'has'} "
                "a 'decoder_mask': build the dataset with this task's mask_generators()"
            )
        return batch["clip"], batch["mask"], decoder_mask

    # ------------------------------------------------------------------ state
    def extra_state_dict(self) -> dict[str, torch.Tensor]:
        """The decoder's tensors (``mae.*`` outside the encoder, which is saved as ``model.*``)."""
        return {
            k: v
            for k, v in self.state_dict().items()
            if not k.startswith("model.") and not k.startswith("mae.encoder.")
        }

    # ------------------------------------------------------------------ validation
    def validate(self, data: Any, ctx: ValidationContext) -> dict[str, float]:
        """kNN on frozen features (:meth:`SSLMethod.validate`), then a reconstruction picture of the first
        :attr:`~MaskedConfig.picture_clips` queries in ``ctx.out_dir`` (on the main process; the picture uses the
        task's own encoder and decoder, not an EMA)."""
        result = super().validate(data, ctx)
        if ctx.out_dir is not None and self.cfg.picture_clips > 0 and rank() == 0:
            from vitzoo.ssl.reconstruction import write_reconstruction

            write_reconstruction(self, data[1], ctx.out_dir / "reconstruction.png", count=self.cfg.picture_clips)
        return result
