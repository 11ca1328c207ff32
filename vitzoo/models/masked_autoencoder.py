"""Masked autoencoding (MAE, VideoMAE, MAE-ST, VideoMAE V2's dual masking) around a plain vitzoo encoder.

``MaskedAutoencoder(encoder, decoder)`` runs the encoder on the visible tokens only (its ``forward_visible``: token
dropping, one gather), a light decoder (:mod:`~vitzoo.models.mae_decoder`) on those plus mask tokens, and the
mean squared error against VideoMAE's pixel target (:mod:`~vitzoo.models.mae_target`) over the reconstructed
tokens only. Masks are ``(B, L)`` bool over the token grid, ``True`` = masked (transformers' ``bool_masked_pos``),
the same count per sample; draw them with :mod:`vitzoo.data.masking`.

After pre-training, ``mae.encoder`` is the plain vitzoo model (``vitzoo.save(mae.encoder, ...)`` gives weights that
fine-tune through ``vitzoo train``). Supported encoders: the image ViT (MAE) and the video transformer with the
``joint`` encoder (VideoMAE / MAE-ST); others refuse in one line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vitzoo.data.masking import MaskGenerator, make_mask_generator
from vitzoo.layers.visible import gather_tokens, split_mask
from vitzoo.models.mae_decoder import DecoderConfig, MAEDecoder
from vitzoo.models.mae_target import patch_stats, pixel_patches, reconstruction_target, unpatchify

# encoder parameters after the token features (pooling norm, heads): not used by the pre-training loss
UNUSED_IN_PRETRAINING = ("fc_norm.", "head.", "head_dist.", "attn_pool.")
# encoders whose forward_visible keeps one token per visible grid cell (what the decoder reconstructs from)
TOKEN_ENCODERS = ("joint",)


@dataclass
class MAEOutput:
    """What :meth:`MaskedAutoencoder.forward` returns (all float32)."""

    loss: torch.Tensor  # scalar: MSE over the reconstructed tokens
    pred: torch.Tensor  # (B, L_d, N * C) predicted pixels of the reconstructed tokens, grid order
    target: torch.Tensor  # (B, L_d, N * C) their target
    decoded: torch.Tensor  # (B, L_d) grid indices of the reconstructed tokens


class MaskedAutoencoder(nn.Module):
    """A vitzoo encoder (``.encoder``) and an :class:`~vitzoo.models.mae_decoder.MAEDecoder` (``.decoder``).

    ``mean`` / ``std``: the normalisation the inputs come in (the target un-normalises with them); ``patch``: the
    pixels of one token, ``(tubelet, p, p)`` for clips, ``(p, p)`` for images. ``decoder_mask_generator`` is the
    decoder-mask generator a task draws from (VideoMAE V2's running cell), or None (reconstruct every masked token).
    The encoder's parameters the loss never reaches (its ``fc_norm`` and heads) are frozen (``requires_grad=False``),
    so every trainable parameter gets a gradient (DDP without ``find_unused_parameters``).
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: MAEDecoder,
        *,
        norm_pix_loss: bool,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        decoder_mask_generator: MaskGenerator | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.norm_pix_loss = norm_pix_loss
        self.mean, self.std = tuple(mean), tuple(std)
        self.decoder_mask_generator = decoder_mask_generator
        self.modality = encoder.modality
        self.patch = token_patch(encoder)
        for name, param in encoder.named_parameters():  # never reached by the loss: frozen, so DDP needs no
            if name.startswith(UNUSED_IN_PRETRAINING):  # find_unused_parameters and the optimiser skips them
                param.requires_grad_(False)

    # ----------------------------------------------------------------------------------- grid
    @property
    def grid(self) -> tuple[int, ...]:
        """Token grid at the encoder's configured input size: ``(t, h, w)`` for clips, ``(h, w)`` for images."""
        return self.grid_for(self.encoder.input_shape)

    def grid_for(self, input_shape: tuple[int, ...] | torch.Size) -> tuple[int, ...]:
        """Token grid of an input of shape ``input_shape`` (one clip ``(C, T, H, W)`` or a batch; images likewise)."""
        sizes = tuple(input_shape)[-len(self.patch) :]
        return tuple(s // p for s, p in zip(sizes, self.patch, strict=True))

    @property
    def num_tokens(self) -> int:
        """Grid tokens ``L`` at the configured input size (the length of a mask)."""
        return math.prod(self.grid)

    def mask_generator(self, kind: str = "tube", ratio: float = 0.9) -> MaskGenerator:
        """A :mod:`vitzoo.data.masking` generator on this model's grid (``tube``, ``random``, ``running_cell``)."""
        grid = self.grid if len(self.grid) == 3 or kind != "tube" else (1, *self.grid)
        return make_mask_generator(kind, grid=grid, ratio=ratio)

    # ----------------------------------------------------------------------------------- forward
    def forward(self, clips: torch.Tensor, mask: torch.Tensor, decoder_mask: torch.Tensor | None = None) -> MAEOutput:
        """Normalised clips ``(B, C, T, H, W)`` (images ``(B, C, H, W)``), ``mask`` ``(B, L)`` (``True`` = hidden
        from the encoder) -> :class:`MAEOutput`. ``decoder_mask`` ``(B, L)`` (VideoMAE V2, ``True`` = not
        reconstructed): the decoder reconstructs the tokens it leaves ``False``; default: every masked token."""
        num_tokens = math.prod(self.grid_for(clips.shape))
        visible, masked = split_mask(mask, num_tokens)  # (B, L_v), (B, L_m)
        decoded = masked if decoder_mask is None else split_mask(decoder_mask, num_tokens)[0]  # (B, L_d)
        tokens = self.encoder.forward_visible(clips, mask)  # (B, P + L_v, D)
        tokens = tokens[:, self.encoder.num_prefix_tokens :]  # (B, L_v, D): the decoder takes grid tokens only
        pred = self.decoder(tokens, visible, decoded, num_tokens)  # (B, L_d, N * C)
        target = reconstruction_target(
            clips, self.patch, mean=self.mean, std=self.std, norm_pix_loss=self.norm_pix_loss
        )  # (B, L, N * C), float32
        target = gather_tokens(target, decoded)  # (B, L_d, N * C)
        with torch.autocast(device_type=clips.device.type, enabled=False):
            pred = pred.float()
            loss = F.mse_loss(pred, target)
        return MAEOutput(loss=loss, pred=pred, target=target, decoded=decoded)

    def loss(self, clips: torch.Tensor, mask: torch.Tensor, decoder_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The scalar float32 loss of :meth:`forward` (transformers' ``VideoMAEForPreTraining(...).loss``)."""
        return self.forward(clips, mask, decoder_mask).loss

    @torch.no_grad()
    def reconstruct(self, clips: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``clips`` with every masked patch replaced by its reconstruction, in the same normalised space and shape.

        With ``norm_pix_loss`` the prediction is per-patch normalised; it is mapped back with the true patch's own
        mean and std (as VideoMAE's visualisation does), so the picture shows structure, not the patch's colour.
        """
        out = self.forward(clips, mask)
        patches = pixel_patches(clips, self.patch, mean=self.mean, std=self.std)  # (B, L, N, C) in [0, 1]
        b, length, n, c = patches.shape
        pred = out.pred.reshape(b, -1, n, c)  # (B, L_d, N, C)
        if self.norm_pix_loss:
            mu, sigma = (gather_tokens(s.flatten(2), out.decoded)[:, :, None] for s in patch_stats(patches))
            pred = pred * sigma + mu  # (B, L_d, N, C)
        index = out.decoded[..., None].expand(-1, -1, n * c)  # (B, L_d, N * C)
        patches = patches.flatten(2).scatter(1, index, pred.flatten(2)).reshape(b, length, n, c)
        frames = unpatchify(patches, self.grid_for(clips.shape), self.patch)  # (B, C, [T,] H, W) in [0, 1]
        std = torch.tensor(self.std, device=clips.device).reshape(-1, *([1] * (clips.ndim - 2)))
        mean = torch.tensor(self.mean, device=clips.device).reshape(-1, *([1] * (clips.ndim - 2)))
        return ((frames - mean) / std).to(clips.dtype)


def token_patch(encoder: nn.Module) -> tuple[int, ...]:
    """Pixels of one token of ``encoder``: ``(tubelet, p, p)`` for a video model, ``(p, p)`` for an image one."""
    cfg = encoder.cfg
    return (cfg.tubelet_size, cfg.patch_size, cfg.patch_size) if encoder.modality == "video" else (cfg.patch_size,) * 2


def _refuse_encoder(encoder: nn.Module) -> None:
    cfg = getattr(encoder, "cfg", None)
    name = type(encoder).__name__
    if cfg is None or not hasattr(encoder, "forward_visible"):
        raise NotImplementedError(
            f"masked autoencoding runs the encoder on visible tokens only, which {name} cannot do; use the image ViT "
            "(MAE) or a joint ViViT (VideoMAE), e.g. vitzoo.create('vivit_joint_nano_8x2', num_classes=0)"
        )
    encoder_name = getattr(cfg, "encoder", None)
    if encoder.modality == "video" and encoder_name not in TOKEN_ENCODERS:
        raise NotImplementedError(
            f"masked autoencoding needs one encoder token per visible grid cell; the {encoder_name!r} encoder does "
            "not give that: use encoder='joint' (VideoMAE / MAE-ST)"
        )
    if cfg.num_classes:
        raise ValueError(f"the encoder has a {cfg.num_classes}-class head; build it with num_classes=0")


def build_masked_autoencoder(
    encoder: nn.Module,
    *,
    decoder_dim: int | None = None,
    decoder_depth: int = 4,
    decoder_heads: int | None = None,
    decoder_mlp_ratio: float = 4.0,
    norm_pix_loss: bool = True,
    decoder_mask: MaskGenerator | None = None,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
) -> MaskedAutoencoder:
    """A :class:`MaskedAutoencoder` around ``encoder`` (a vitzoo image ViT or joint ViViT with ``num_classes=0``).

    Args:
        encoder: the model to pre-train; it stays a plain vitzoo model (``mae.encoder``).
        decoder_dim: decoder width (default: half the encoder's, VideoMAE's 384 for ViT-B).
        decoder_depth: decoder blocks (VideoMAE: 4).
        decoder_heads: decoder heads (default: half the encoder's, VideoMAE's 6 for ViT-B).
        decoder_mlp_ratio: decoder MLP width over its width.
        norm_pix_loss: reconstruct per-patch normalised pixels (VideoMAE's default) instead of raw ``[0, 1]`` ones.
        decoder_mask: the decoder-mask generator tasks draw from (VideoMAE V2's ``RunningCellMask``), or None.
        mean, std: the normalisation of the inputs (default: the encoder config's).
    """
    _refuse_encoder(encoder)
    cfg = encoder.cfg
    mean = tuple(cfg.mean if mean is None else mean)
    std = tuple(cfg.std if std is None else std)
    if len(mean) != cfg.in_chans or len(std) != cfg.in_chans:
        raise ValueError(f"mean={mean}, std={std}: need one value per input channel ({cfg.in_chans})")
    dim = cfg.embed_dim // 2 if decoder_dim is None else decoder_dim
    heads = max(cfg.num_heads // 2, 1) if decoder_heads is None else decoder_heads
    if dim < 1 or heads < 1 or dim % heads:
        raise ValueError(f"decoder_dim={dim} must be a positive multiple of decoder_heads={heads}")
    patch = token_patch(encoder)
    grid = [s // p for s, p in zip(encoder.input_shape[1:], patch, strict=True)]
    decoder = MAEDecoder(
        DecoderConfig(
            encoder_dim=cfg.embed_dim, patch_pixels=cfg.in_chans * math.prod(patch), num_tokens=math.prod(grid),
            dim=dim, depth=decoder_depth, num_heads=heads, mlp_ratio=decoder_mlp_ratio, qkv_bias=cfg.qkv_bias,
            act=cfg.act, norm_eps=cfg.norm_eps, final_norm_eps=cfg.norm_eps,
        )
    )  # fmt: skip
    mae = MaskedAutoencoder(
        encoder, decoder, norm_pix_loss=norm_pix_loss, mean=mean, std=std, decoder_mask_generator=decoder_mask
    )
    return mae


__all__ = ["MAEOutput", "MaskedAutoencoder", "build_masked_autoencoder"]
