"""VideoMAE -> vitzoo's joint encoder: exact conversion (classifier, backbone, pre-training encoder), the fixed
sinusoid table, the query / value-only biases, resizing, and fine-tuning through the recipes and the CLI."""

from __future__ import annotations

import logging

import pytest
import torch

import vitzoo
from tests.helpers import REPO_ROOT
from tests.helpers.hub_sources import hf_clip, hf_folder, max_diff, to_vitzoo
from vitzoo.layers.pos_embed import sincos_table

transformers = pytest.importorskip("transformers")

TOL = 1e-5
# 4 frames at 32 px, 2-frame tubelets of 8x8 patches, width 48, 3 heads, 2 layers: no VideoMAE default
TINY = dict(num_frames=4, tubelet_size=2, intermediate_size=96)
# the size of vitzoo's vivit_joint_nano_8x2, to initialise it
NANO = dict(num_frames=4, tubelet_size=2, hidden_size=64, num_attention_heads=2, intermediate_size=256)


@pytest.fixture
def classifier(tmp_path, hub_cache):
    """A VideoMAEForVideoClassification, its hf-hub: name and transformers' model read back from the cache."""
    model, folder = hf_folder(tmp_path, "VideoMAEForVideoClassification", "VideoMAEConfig", num_labels=5, **TINY)
    name = hub_cache.add("MCG-NJU/videomae-tiny-finetuned", folder)
    ref = transformers.VideoMAEForVideoClassification.from_pretrained(hub_cache.snapshot(name[len("hf-hub:") :]))
    return model, name, ref.eval()


def test_classifier_from_hub_is_exact(classifier, caplog):
    _, name, ref = classifier
    with caplog.at_level(logging.INFO, logger="vitzoo"):
        ours = vitzoo.load(name)
    assert "recognised transformers VideoMAEForVideoClassification:" in caplog.text
    cfg = ours.cfg
    assert (cfg.encoder, cfg.class_token, cfg.global_pool, cfg.fc_norm, cfg.pos_embed) == (
        "joint", False, "avg", True, "sincos"
    )  # fmt: skip
    assert (cfg.fc_norm_eps, cfg.norm_eps) == (1e-5, 1e-12)
    x = hf_clip(ref)
    with torch.no_grad():
        assert max_diff(ours(to_vitzoo(x)), ref(pixel_values=x).logits) <= TOL


def test_classifier_object_is_exact_and_saves_for_sharing(classifier, tmp_path):
    model, _, _ = classifier
    ours = vitzoo.convert.from_hf(model)
    reloaded = vitzoo.load(vitzoo.save_pretrained(ours, tmp_path / "shared"))  # config.json + safetensors + card
    x = hf_clip(model)
    with torch.no_grad():
        assert max_diff(ours(to_vitzoo(x)), model(pixel_values=x).logits) <= TOL
        assert max_diff(reloaded(to_vitzoo(x)), model(pixel_values=x).logits) <= TOL


@pytest.mark.parametrize("mean_pooling", [True, False])
def test_backbone_tokens_are_exact(mean_pooling, tmp_path):
    model, _ = hf_folder(tmp_path, "VideoMAEModel", "VideoMAEConfig", use_mean_pooling=mean_pooling, **TINY)
    ours = vitzoo.convert.from_hf(model)
    assert ours.cfg.num_classes == 0 and ours.cfg.use_fc_norm == mean_pooling
    x = hf_clip(model)
    with torch.no_grad():
        assert max_diff(ours.forward_features(to_vitzoo(x)), model(pixel_values=x).last_hidden_state) <= TOL


def test_pretraining_checkpoint_gives_its_encoder(tmp_path, caplog):
    """The encoder of the masked autoencoder it converts to (the decoder: test_convert_videomae_pretraining.py)."""
    decoder = dict(decoder_hidden_size=24, decoder_num_attention_heads=2, decoder_intermediate_size=48)
    model, _ = hf_folder(
        tmp_path, "VideoMAEForPreTraining", "VideoMAEConfig", decoder_num_hidden_layers=1, **decoder, **TINY
    )
    with caplog.at_level(logging.WARNING, logger="vitzoo"):
        ours = vitzoo.convert.from_hf(model).encoder
    assert "dropped" not in caplog.text
    x = hf_clip(model)
    with torch.no_grad():
        ref = model.videomae(pixel_values=x).last_hidden_state
        assert max_diff(ours.forward_features(to_vitzoo(x)), ref) <= TOL


def test_sincos_table_is_videomaes():
    from transformers.models.videomae.modeling_videomae import get_sinusoid_encoding_table

    torch.testing.assert_close(sincos_table(40, 48), get_sinusoid_encoding_table(40, 48), rtol=0, atol=1e-7)


def test_parity_detects_a_wrong_table_or_bias(classifier):
    """Negative controls: the position table and the query / value biases each matter."""
    model, _, _ = classifier
    x = hf_clip(model)

    def zero_table(m):
        m.encoder.transformer.pos_embed.zero_()

    def swap_query_and_value_bias(m):
        bias = m.encoder.transformer.blocks[0].attn.qkv.bias
        bias.copy_(bias.roll(2 * m.cfg.embed_dim))

    for corrupt in (zero_table, swap_query_and_value_bias):
        ours = vitzoo.convert.from_hf(model)
        with torch.no_grad():
            corrupt(ours)
            assert max_diff(ours(to_vitzoo(x)), model(pixel_values=x).logits) > 100 * TOL


def test_key_bias_is_zero_and_gets_no_gradient(classifier):
    """VideoMAE has no key bias; vitzoo's fused bias carries a zero key part, which the softmax makes inert:
    its gradient vanishes (to rounding), so fine-tuning keeps it at zero."""
    model, _, _ = classifier
    ours = vitzoo.convert.from_hf(model).train()
    dim = ours.cfg.embed_dim
    for blk in ours.encoder.transformer.blocks:
        assert torch.all(blk.attn.qkv.bias[dim : 2 * dim] == 0)
    ours(to_vitzoo(hf_clip(model))).square().sum().backward()
    for blk in ours.encoder.transformer.blocks:
        grad = blk.attn.qkv.bias.grad
        assert grad[dim : 2 * dim].abs().max() < 1e-5 * grad.abs().max()


def test_fixed_table_is_never_trained_and_resamples(classifier):
    _, name, _ = classifier
    ours = vitzoo.convert.from_hub(name)
    table = ours.encoder.transformer.pos_embed
    assert not table.requires_grad
    ours.resample(num_frames=8, img_size=48)  # a fresh Parameter now: forward still detaches it
    out = ours(torch.randn(1, 3, 8, 48, 48))
    out.sum().backward()
    assert ours.encoder.transformer.pos_embed.grad is None
    assert ours.patch_embed.proj.weight.grad is not None


def test_dynamic_size_matches_permanent_resample(classifier):
    _, name, _ = classifier
    dynamic = vitzoo.create("vivit_joint_nano_8x2", embed_dim=48, num_heads=3, mlp_ratio=2.0, num_classes=5,
                            dynamic_size=True, pretrained=name).eval()  # fmt: skip
    fixed = vitzoo.load(name)
    fixed.resample(num_frames=6, img_size=40)
    x = torch.randn(1, 3, 6, 40, 40)
    with torch.no_grad():
        assert max_diff(dynamic(x), fixed(x)) <= TOL


def test_initialises_a_registered_joint_model_taking_its_layout(tmp_path, hub_cache, caplog):
    model, folder = hf_folder(tmp_path, "VideoMAEForVideoClassification", "VideoMAEConfig", num_labels=5, **NANO)
    name = hub_cache.add("MCG-NJU/videomae-nano", folder)
    with caplog.at_level(logging.INFO, logger="vitzoo"):
        ours = vitzoo.create("vivit_joint_nano_8x2", pretrained=name, num_classes=5).eval()
    assert "the model takes from" in caplog.text and "class_token=False" in caplog.text
    x = hf_clip(model)
    with torch.no_grad():
        assert max_diff(ours(to_vitzoo(x)), model(pixel_values=x).logits) <= TOL
    other = vitzoo.create("vivit_joint_nano_8x2", pretrained=name, num_classes=3)  # new head, same trunk
    assert other.head.weight.shape == (3, 64) and not other.encoder.transformer.pos_embed.requires_grad


def test_cli_fine_tunes_from_the_hub_name(tmp_path, hub_cache):
    """``vitzoo train`` with ``model.pretrained=hf-hub:...``: the recipe builds the model through vitzoo.create."""
    from vitzoo.cli.main import main
    from vitzoo.data import make_motion_dataset

    _, folder = hf_folder(tmp_path / "src", "VideoMAEForVideoClassification", "VideoMAEConfig", num_labels=4, **NANO)
    name = hub_cache.add("MCG-NJU/videomae-nano", folder)
    data = tmp_path / "motion"
    make_motion_dataset(data, num_train=4, num_val=2, num_frames=12, size=32, progress=False)
    recipe = REPO_ROOT / "configs" / "vivit_joint_nano_motion.yaml"
    sets = [f"model.pretrained={name}", f"data.root={data}", f"output_dir={tmp_path / 'run'}", "train.epochs=1",
            "train.max_steps=1", "train.batch_size=2", "train.num_workers=0", "train.eval_every=1", "train.log_every=1",
            "train.progress=false"]  # fmt: skip
    assert main(["train", "--config", str(recipe), *[a for s in sets for a in ("--set", s)]]) == 0
    (weights,) = sorted((tmp_path / "run" / "checkpoints").glob("step_*.safetensors"))
    trained = vitzoo.load(weights)
    assert trained.cfg.pos_embed == "sincos" and not trained.cfg.class_token


def test_classifier_reading_a_patch_token_is_refused(tmp_path, hub_cache):
    _, folder = hf_folder(tmp_path, "VideoMAEForVideoClassification", "VideoMAEConfig", use_mean_pooling=False, **TINY)
    with pytest.raises(NotImplementedError, match="use_mean_pooling=False with a classifier"):
        vitzoo.load(hub_cache.add("org/videomae-first-token", folder))
