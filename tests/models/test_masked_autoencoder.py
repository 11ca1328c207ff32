"""MaskedAutoencoder: VideoMAE's target and loss, dual masking, fp32 under bf16 autocast, reconstructions, refusals.

Exactness against transformers' ``VideoMAEForPreTraining`` is in tests/checkpoints/test_convert_videomae_pretraining.py.
"""

from __future__ import annotations

import pytest
import torch

import vitzoo
from vitzoo.data.masking import RunningCellMask, TubeMask, draw_masks
from vitzoo.models.masked_autoencoder import build_masked_autoencoder


def _video_mae(**options):
    return build_masked_autoencoder(vitzoo.create("vivit_joint_nano_8x2", num_classes=0), **options)


def _videomae_target(clips, mean, std, t, p, norm_pix):
    """The target as VideoMAE's code builds it (view / permute, (t, p, p, C) per tubelet), written here."""
    x = clips.permute(0, 2, 1, 3, 4)  # (B, T, C, H, W) as VideoMAE's frames
    x = x * torch.tensor(std)[None, None, :, None, None] + torch.tensor(mean)[None, None, :, None, None]
    b, time, c, h, w = x.shape
    x = x.view(b, time // t, t, c, h // p, p, w // p, p).permute(0, 1, 4, 6, 2, 5, 7, 3).contiguous()
    x = x.view(b, -1, t * p * p, c)
    if norm_pix:
        x = (x - x.mean(dim=-2, keepdim=True)) / (x.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6)
    return x.view(b, x.shape[1], -1)


@pytest.mark.parametrize("norm_pix", [True, False])
def test_loss_is_mse_over_the_masked_tokens_of_videomaes_target(norm_pix):
    mae = _video_mae(norm_pix_loss=norm_pix)
    assert (mae.grid, mae.num_tokens, mae.decoder.cfg.dim, mae.decoder.cfg.num_heads) == ((2, 4, 4), 32, 32, 1)
    clips = torch.randn(2, *mae.encoder.input_shape)
    mask = draw_masks(mae.mask_generator("tube", 0.75), range(2), seed=0)
    out = mae(clips, mask)
    target = _videomae_target(clips, mae.mean, mae.std, 2, 8, norm_pix)[mask].reshape(2, -1, 2 * 8 * 8 * 3)
    torch.testing.assert_close(out.target, target, rtol=0, atol=1e-6)
    torch.testing.assert_close(out.loss, ((out.pred - target) ** 2).mean(), rtol=0, atol=1e-7)
    assert out.pred.shape == (2, 24, 384)
    out.loss.backward()
    grads = {n: p.grad for n, p in mae.named_parameters() if p.requires_grad}
    assert grads["decoder.mask_token"].abs().sum() > 0
    assert grads["encoder.patch_embed.proj.weight"].abs().sum() > 0


def test_every_trainable_parameter_gets_a_gradient():
    """VideoMAE's encoder layout (mean pooling, fc_norm): the unused fc_norm is frozen, so DDP needs no
    find_unused_parameters; the fixed position table stays frozen."""
    encoder = vitzoo.create("vivit_joint_nano_8x2", num_classes=0, class_token=False, global_pool="avg",
                            fc_norm=True, pos_embed="sincos")  # fmt: skip
    mae = build_masked_autoencoder(encoder, decoder_depth=1)
    clips = torch.randn(2, *encoder.input_shape)
    mae.loss(clips, draw_masks(mae.mask_generator("tube", 0.5), range(2), seed=0)).backward()
    trainable = {n: p for n, p in mae.named_parameters() if p.requires_grad}
    assert not [n for n, p in trainable.items() if p.grad is None]
    frozen = sorted(n for n, p in mae.named_parameters() if not p.requires_grad)
    assert frozen == ["encoder.encoder.transformer.pos_embed", "encoder.fc_norm.bias", "encoder.fc_norm.weight"]


def test_decoder_mask_reconstructs_the_tokens_it_leaves_visible():
    mae = _video_mae()
    clips = torch.randn(2, *mae.encoder.input_shape)
    mask = draw_masks(TubeMask(mae.grid, 0.75), range(2), seed=0)
    decoder_mask = draw_masks(RunningCellMask(mae.grid, 0.5), range(2), seed=1)
    out = mae(clips, mask, decoder_mask)
    assert torch.equal(out.decoded, torch.stack([torch.nonzero(~m).flatten() for m in decoder_mask]))
    assert out.pred.shape == (2, 16, 384)


def test_target_and_loss_are_float32_under_bf16_autocast():
    mae = _video_mae()
    clips = torch.randn(2, *mae.encoder.input_shape)
    mask = draw_masks(mae.mask_generator("random", 0.5), range(2), seed=0)
    reference = mae(clips, mask).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = mae(clips, mask)
    assert out.loss.dtype == out.target.dtype == out.pred.dtype == torch.float32
    assert abs(out.loss.item() - reference.item()) < 0.05 * reference.item()


@pytest.mark.parametrize("norm_pix", [True, False])
def test_a_perfect_prediction_reconstructs_the_input(norm_pix, monkeypatch):
    mae = _video_mae(norm_pix_loss=norm_pix).eval()
    clips = torch.randn(2, *mae.encoder.input_shape)
    mask = draw_masks(mae.mask_generator("tube", 0.75), range(2), seed=0)
    target = _videomae_target(clips, mae.mean, mae.std, 2, 8, norm_pix)
    perfect = target[mask].reshape(2, -1, target.shape[-1])
    monkeypatch.setattr(mae.decoder, "forward", lambda *args: perfect)
    torch.testing.assert_close(mae.reconstruct(clips, mask), clips, rtol=0, atol=1e-5)
    monkeypatch.setattr(mae.decoder, "forward", lambda *args: torch.zeros_like(perfect))
    assert (mae.reconstruct(clips, mask) - clips).abs().max() > 0.1  # negative control


def test_image_vit_mae():
    mae = build_masked_autoencoder(vitzoo.create("vit_nano_patch8_32", num_classes=0), decoder_depth=1)
    images = torch.randn(2, *mae.encoder.input_shape)
    mask = draw_masks(mae.mask_generator("random", 0.75), range(2), seed=0)
    out = mae(images, mask)
    assert mae.grid == (4, 4) and out.pred.shape == (2, 12, 8 * 8 * 3)
    assert mae.reconstruct(images, mask).shape == images.shape
    out.loss.backward()


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("vivit_fact_enc_nano_8x2", "one encoder token per visible grid cell.*encoder='joint'"),
        ("mvitv2_nano_4x2", "cannot do; use the image ViT.*joint ViViT"),
    ],
)
def test_other_families_are_refused_naming_the_alternative(name, match):
    with pytest.raises(NotImplementedError, match=match):
        build_masked_autoencoder(vitzoo.create(name, num_classes=0))


def test_a_head_or_odd_decoder_shapes_are_refused():
    with pytest.raises(ValueError, match="build it with num_classes=0"):
        build_masked_autoencoder(vitzoo.create("vivit_joint_nano_8x2", num_classes=3))
    with pytest.raises(ValueError, match="decoder_dim=30 must be a positive multiple of decoder_heads=4"):
        _video_mae(decoder_dim=30, decoder_heads=4)
