"""transformers' ``VideoMAEForPreTraining`` -> vitzoo's :class:`~vitzoo.models.masked_autoencoder.MaskedAutoencoder`.

The encoder converts as ``VideoMAEModel`` does (:mod:`~vitzoo.checkpoints.hf_video`); this module adds the
pre-training decoder: its config (``decoder_*`` fields of the HF config) and its key table
(``encoder_to_decoder``, ``mask_token``, ``decoder.decoder_layers.{i}`` -> ``blocks.{i}``, ``decoder.norm``,
``decoder.head``). HF's loss un-normalises the clips with ImageNet's mean / std whatever the preprocessor says
(and not at all for ``num_channels != 3``), so the converted model's target uses those constants.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from vitzoo.checkpoints.checked import load_checked
from vitzoo.checkpoints.checkpoint import Checkpoint
from vitzoo.checkpoints.hf_rules import (
    BERT_BLOCK,
    HF_ACTIVATIONS,
    HFConfig,
    Rule,
    apply_rules,
    block_rules,
    fused_qv_bias,
    raise_unsupported,
)
from vitzoo.checkpoints.hf_video import VIDEOMAE_DEFAULTS, _videomae_qv_bias
from vitzoo.models.mae_decoder import DecoderConfig, MAEDecoder
from vitzoo.models.masked_autoencoder import MaskedAutoencoder

log = logging.getLogger(__name__)

# transformers' defaults of the decoder fields (checked against VideoMAEConfig by the tests)
PRETRAINING_DEFAULTS = dict(
    VIDEOMAE_DEFAULTS,
    decoder_num_attention_heads=6,
    decoder_hidden_size=384,
    decoder_num_hidden_layers=4,
    decoder_intermediate_size=1536,
    norm_pix_loss=True,
)
DECODER_PREFIXES = ("decoder.", "encoder_to_decoder.", "mask_token")
HF_DECODER_NORM_EPS = 1e-5  # VideoMAEDecoder's final nn.LayerNorm keeps torch's default eps


def decoder_config(hf_cfg: Any, encoder_dim: int) -> DecoderConfig:
    """The :class:`~vitzoo.models.mae_decoder.DecoderConfig` of an HF ``VideoMAEConfig``."""
    dim, heads = hf_cfg.decoder_hidden_size, hf_cfg.decoder_num_attention_heads
    hidden = hf_cfg.decoder_intermediate_size
    raise_unsupported(
        "VideoMAE's decoder",
        {
            f"decoder_hidden_size={dim} not divisible by decoder_num_attention_heads={heads}": dim % heads != 0,
            f"decoder MLP width {hidden} not expressible as int(dim * mlp_ratio)": int(dim * (hidden / dim)) != hidden,
        },
    )
    patch, t = int(hf_cfg.patch_size), int(hf_cfg.tubelet_size)
    grid = (hf_cfg.num_frames // t) * (hf_cfg.image_size // patch) ** 2
    return DecoderConfig(
        encoder_dim=encoder_dim, patch_pixels=hf_cfg.num_channels * t * patch * patch, num_tokens=grid, dim=dim,
        depth=hf_cfg.decoder_num_hidden_layers, num_heads=heads, mlp_ratio=hidden / dim,
        qkv_bias=_videomae_qv_bias(hf_cfg), act=HF_ACTIVATIONS[hf_cfg.hidden_act],
        norm_eps=float(hf_cfg.layer_norm_eps), final_norm_eps=HF_DECODER_NORM_EPS,
    )  # fmt: skip


def decoder_rules(cfg: DecoderConfig) -> list[Rule]:
    """Key table: the decoder tensors of an HF ``VideoMAEForPreTraining`` file -> vitzoo's ``MAEDecoder``."""
    rules: list[Rule] = [
        ("encoder_to_decoder.weight", ("encoder_to_decoder.weight",), None),
        ("mask_token", ("mask_token",), None),
    ]
    rules += [(f"{m}.{p}", (f"decoder.{m}.{p}",), None) for m in ("norm", "head") for p in ("weight", "bias")]
    for i in range(cfg.depth):
        src = f"decoder.decoder_layers.{i}."
        rules += block_rules(src, f"blocks.{i}.", BERT_BLOCK, qkv="attention.attention", qkv_bias=False)
        if cfg.qkv_bias:
            bias = (f"{src}attention.attention.q_bias", f"{src}attention.attention.v_bias")
            rules.append((f"blocks.{i}.attn.qkv.bias", bias, fused_qv_bias))
    return rules


@dataclass
class MaskedAutoencoderCheckpoint(Checkpoint):
    """A pre-training checkpoint: the encoder as any :class:`Checkpoint` (``vitzoo.create(pretrained=...)`` takes
    it), plus the decoder; :meth:`build` gives the whole :class:`MaskedAutoencoder`."""

    decoder_state: dict[str, torch.Tensor] = field(default_factory=dict)
    decoder_config: DecoderConfig | None = None
    norm_pix_loss: bool = True
    target_mean: tuple[float, ...] = IMAGENET_DEFAULT_MEAN
    target_std: tuple[float, ...] = IMAGENET_DEFAULT_STD

    def build(self) -> MaskedAutoencoder:
        """The masked autoencoder (encoder and decoder loaded), in train mode."""
        encoder = super().build()
        decoder = MAEDecoder(self.decoder_config).to(next(encoder.parameters()).dtype)
        load_checked(decoder, self.decoder_state, source=f"{self.source} (decoder)")
        return MaskedAutoencoder(
            encoder, decoder, norm_pix_loss=self.norm_pix_loss, mean=self.target_mean, std=self.target_std
        )


def with_decoder(backbone: Checkpoint, state: dict[str, torch.Tensor], config: dict[str, Any]) -> Checkpoint:
    """``backbone`` (the converted encoder) with the decoder tensors of ``state`` (HF keys) converted beside it."""
    hf_cfg = HFConfig(config, PRETRAINING_DEFAULTS)
    cfg = decoder_config(hf_cfg, backbone.config.embed_dim)
    decoder_state = apply_rules(decoder_rules(cfg), state, dropped=set())
    c = hf_cfg.num_channels
    mean, std = (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD) if c == 3 else ((0.0,) * c, (1.0,) * c)  # HF's loss
    if tuple(backbone.config.mean) != tuple(mean):
        log.info(
            "%s: transformers' VideoMAE loss un-normalises clips with mean %s / std %s, not the preprocessing's %s / "
            "%s; the converted target does the same", backbone.source, mean, std, backbone.config.mean,
            backbone.config.std,
        )  # fmt: skip
    log.info(
        "VideoMAE pre-training decoder: width %d, depth %d, %d heads, norm_pix_loss=%s",
        cfg.dim, cfg.depth, cfg.num_heads, hf_cfg.norm_pix_loss,
    )  # fmt: skip
    return MaskedAutoencoderCheckpoint(
        state=backbone.state, config=backbone.config, source=backbone.source, arch=backbone.arch,
        decoder_state=decoder_state, decoder_config=cfg, norm_pix_loss=bool(hf_cfg.norm_pix_loss),
        target_mean=tuple(mean), target_std=tuple(std),
    )  # fmt: skip


@dataclass(frozen=True)
class HFTask:
    """What an HF class adds on top of its backbone: the key prefixes it owns and how it extends the checkpoint."""

    prefixes: tuple[str, ...]
    extend: Any  # (backbone Checkpoint, its HF tensors, config.json) -> Checkpoint


VIDEOMAE_PRETRAINING = HFTask(DECODER_PREFIXES, with_decoder)
