"""transformers' VideoMAEForPreTraining -> vitzoo's MaskedAutoencoder: loss and gradients exact, through the Hub cache.

Two perturbed tiny configs (one with ``norm_pix_loss`` off, other widths, heads, activation, no q/v biases); the
gradients are compared by converting a copy of the HF model whose parameters hold HF's gradients (the converter
maps them as it maps weights: fused q/k/v, a zero key bias).
"""

from __future__ import annotations

import copy
import logging

import pytest
import torch

import vitzoo
from tests.helpers.hub_sources import hf_clip, hf_folder, max_diff, to_vitzoo
from vitzoo.data.masking import RandomMask, TubeMask, draw_masks
from vitzoo.models.masked_autoencoder import MaskedAutoencoder

transformers = pytest.importorskip("transformers")

TOL = 1e-5
DECODER = dict(decoder_hidden_size=24, decoder_num_attention_heads=2, decoder_intermediate_size=48)
CONFIGS = {
    "norm_pix": dict(num_frames=4, tubelet_size=2, intermediate_size=96, decoder_num_hidden_layers=2, **DECODER),
    "raw_pix": dict(
        num_frames=6, tubelet_size=2, image_size=24, hidden_size=32, num_attention_heads=4, intermediate_size=64,
        hidden_act="gelu_new", qkv_bias=False, use_mean_pooling=False, norm_pix_loss=False,
        decoder_hidden_size=16, decoder_num_attention_heads=4, decoder_intermediate_size=48,
        decoder_num_hidden_layers=1,
    ),
}  # fmt: skip


def _pretraining(tmp_path, name):
    model, folder = hf_folder(tmp_path, "VideoMAEForPreTraining", "VideoMAEConfig", **CONFIGS[name])
    with torch.no_grad():
        model.mask_token.normal_()  # zero at init: perturbed() scales it, so give it a value that matters
    model.save_pretrained(folder)
    return model, folder


def _mask(model, name):
    c = model.config
    grid = (c.num_frames // c.tubelet_size, c.image_size // c.patch_size, c.image_size // c.patch_size)
    gen = TubeMask(grid, 0.75) if name == "norm_pix" else RandomMask(grid, 0.6)
    return draw_masks(gen, range(2), seed=0)


def _grads_in_vitzoo_layout(model):
    """A copy of ``model`` whose parameters hold ``model``'s gradients, converted: vitzoo-named gradients."""
    holder = copy.deepcopy(model)
    with torch.no_grad():
        for (_, p), (_, g) in zip(holder.named_parameters(), model.named_parameters(), strict=True):
            p.copy_(g.grad if g.grad is not None else torch.zeros_like(p))
    return dict(vitzoo.convert.from_hf(holder).named_parameters())


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_loss_and_gradients_equal_transformers(tmp_path, name):
    model, _ = _pretraining(tmp_path, name)
    model.train()
    ours = vitzoo.convert.from_hf(model)
    assert isinstance(ours, MaskedAutoencoder) and ours.norm_pix_loss == model.config.norm_pix_loss
    x, mask = hf_clip(model), _mask(model, name)
    theirs = model(pixel_values=x, bool_masked_pos=mask).loss
    loss = ours.loss(to_vitzoo(x), mask)
    assert abs(loss.item() - theirs.item()) <= TOL
    theirs.backward()
    loss.backward()
    expected = _grads_in_vitzoo_layout(model)
    compared = 0
    for key, param in ours.named_parameters():
        if not param.requires_grad:  # the fixed position table
            continue
        if param.grad is None:  # the fresh fc_norm of a mean-pooling encoder: not used in pre-training
            assert key.startswith("encoder.fc_norm."), key
            continue
        assert max_diff(param.grad, expected[key]) <= TOL * expected[key].abs().max() + 1e-9, key  # relative
        compared += 1
    assert compared >= 10 + 12 * model.config.num_hidden_layers // 2


def test_parity_detects_a_wrong_decoder_or_target(tmp_path):
    """Negative controls: the decoder's mask token and the target's pixel normalisation each matter."""
    model, _ = _pretraining(tmp_path, "norm_pix")
    x, mask = hf_clip(model), _mask(model, "norm_pix")
    with torch.no_grad():
        theirs = model(pixel_values=x, bool_masked_pos=mask).loss.item()
        ours = vitzoo.convert.from_hf(model)
        ours.decoder.mask_token.zero_()
        assert abs(ours.loss(to_vitzoo(x), mask).item() - theirs) > 100 * TOL
        ours = vitzoo.convert.from_hf(model)
        ours.norm_pix_loss = False
        assert abs(ours.loss(to_vitzoo(x), mask).item() - theirs) > 100 * TOL


def test_hub_name_keeps_the_decoder(tmp_path, hub_cache, caplog):
    model, folder = _pretraining(tmp_path, "norm_pix")
    name = hub_cache.add("MCG-NJU/videomae-tiny-pretraining", folder)
    ref = transformers.VideoMAEForPreTraining.from_pretrained(hub_cache.snapshot(name[len("hf-hub:") :])).eval()
    with caplog.at_level(logging.INFO, logger="vitzoo"):
        converted = vitzoo.convert.from_hf(name)
        loaded = vitzoo.load(name)
    assert "VideoMAE pre-training decoder: width 24, depth 2, 2 heads" in caplog.text
    assert converted.training and not loaded.training
    x, mask = hf_clip(model), _mask(model, "norm_pix")
    with torch.no_grad():
        theirs = ref(pixel_values=x, bool_masked_pos=mask).loss.item()
        for ours in (converted.eval(), loaded):
            assert abs(ours.loss(to_vitzoo(x), mask).item() - theirs) <= TOL
    # a registered model initialised from it takes the encoder
    encoder = vitzoo.create("vivit_joint_nano_8x2", embed_dim=48, num_heads=3, mlp_ratio=2.0, num_classes=0,
                            pretrained=name).eval()  # fmt: skip
    with torch.no_grad():
        ref_tokens = ref.videomae(pixel_values=x).last_hidden_state
        assert max_diff(encoder.forward_features(to_vitzoo(x)), ref_tokens) <= TOL


def test_decoder_defaults_match_transformers():
    from vitzoo.checkpoints.hf_videomae_pretraining import PRETRAINING_DEFAULTS

    cfg = transformers.VideoMAEConfig()
    for key, value in PRETRAINING_DEFAULTS.items():
        assert getattr(cfg, key) == value, key


def test_paths_needing_a_classifier_refuse_a_pretraining_checkpoint(tmp_path, hub_cache, capsys):
    """predict / export / eval / a distillation teacher refuse it in one line; frozen-feature evaluation takes
    its encoder."""
    from vitzoo.api import load_classifier, load_encoder
    from vitzoo.cli.main import main

    model, folder = _pretraining(tmp_path, "norm_pix")
    name = hub_cache.add("MCG-NJU/videomae-tiny-pretraining", folder)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")  # never read: the checkpoint is refused first
    capsys.readouterr()  # transformers' own progress while the folder was written
    for argv in (["predict", "--checkpoint", name, str(clip)], ["export", name, "--out", str(tmp_path / "m.onnx")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "pre-training checkpoint" in err[0]
        assert "fine-tune it first (vitzoo train --set model.pretrained=" in err[0]
    assert not (tmp_path / "m.onnx").exists()
    with pytest.raises(vitzoo.errors.CheckpointFileError, match="vitzoo eval needs a classifier"):
        load_classifier(folder, command="vitzoo eval")
    encoder = load_encoder(name)
    assert not isinstance(encoder, MaskedAutoencoder) and not encoder.training
    x = hf_clip(model)
    with torch.no_grad():
        ref_tokens = model.eval().videomae(pixel_values=x).last_hidden_state
        assert max_diff(encoder.forward_features(to_vitzoo(x)), ref_tokens) <= TOL
