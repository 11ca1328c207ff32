"""Video models initialised from the image checkpoints people download (timm CLIP / DINOv2 with registers / DeiT
distilled / SigLIP, transformers ViT / DINOv2), through ``hf-hub:`` names read offline from a Hub cache.

As in ``test_vivit_init.py``, the initialised video model must reduce exactly to the source ViT: a joint model on a
one-tubelet clip is the ViT on the tubelet's middle frame (central inflation), the factorised encoder's spatial
stage is the ViT on every frame. The reference is the converted ViT (itself exact, see the converter tests)
without what video models do not carry: register tokens, DeiT's distillation token, SigLIP's attention pool.
"""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch
from einops import rearrange

import vitzoo
from tests.helpers.hub_sources import hf_folder, max_diff, timm_folder
from vitzoo.models import build_model

TOL = 1e-5
# source -> (how to write it, the log line its extras must produce)
SOURCES = {
    "clip": (lambda p: timm_folder(p, "vit_base_patch16_clip_224.openai"), None),
    "dinov2-reg": (lambda p: timm_folder(p, "vit_small_patch14_reg4_dinov2.lvd142m"), "reg_token dropped"),
    "deit-distilled": (lambda p: timm_folder(p, "deit_base_distilled_patch16_224.fb_in1k"), "dist_token dropped"),
    "siglip": (lambda p: timm_folder(p, "vit_base_patch16_siglip_224.webli"), "attn_pool dropped"),
    "hf-vit": (lambda p: hf_folder(p, "ViTModel", "ViTConfig", intermediate_size=96), None),
    "hf-dinov2": (lambda p: hf_folder(p, "Dinov2Model", "Dinov2Config", mlp_ratio=2), None),
}


@pytest.fixture(params=SOURCES)
def source(request, tmp_path, hub_cache):
    """(hf-hub: name, the converted ViT reduced to what a video model carries, the expected 'dropped' log line)."""
    write, dropped = SOURCES[request.param]
    _, folder = write(tmp_path / "src")
    name = hub_cache.add(f"org/{request.param}", folder)
    return name, trunk_vit(vitzoo.load(name)), dropped


def trunk_vit(vit: torch.nn.Module) -> torch.nn.Module:
    """``vit`` without register / distillation tokens and attention pooling (mean pooling instead), no head."""
    cfg = vit.cfg
    pool = "avg" if cfg.global_pool == "map" else cfg.global_pool
    reduced = dataclasses.replace(cfg, reg_tokens=0, dist_token=False, global_pool=pool, fc_norm=False, num_classes=0)
    state = {k: v for k, v in vit.state_dict().items() if not k.startswith(("reg_token", "dist_token", "head", "attn"))}
    if cfg.dist_token and not cfg.no_embed_class:  # the distillation token's position entry goes with it
        state["pos_embed"] = torch.cat([state["pos_embed"][:, :1], state["pos_embed"][:, 2:]], dim=1)
    model = build_model(reduced)
    model.load_state_dict(state)
    return model.eval()


def _video_options(vit: torch.nn.Module, **extra) -> dict:
    """The source's widths (the registered nano models are 64 wide) and, without a class token, mean pooling."""
    cfg = vit.cfg
    pooling = {} if cfg.class_token else dict(class_token=False, global_pool="avg")
    return dict(embed_dim=cfg.embed_dim, num_heads=cfg.num_heads, mlp_ratio=cfg.mlp_ratio, **pooling, **extra)


def test_joint_model_on_one_tubelet_is_the_vit_on_its_middle_frame(source, caplog):
    name, vit, dropped = source
    with caplog.at_level(logging.INFO, logger="vitzoo"):
        video = vitzoo.create("vivit_joint_nano_8x2", pretrained=name, **_video_options(vit, num_frames=2)).eval()
    assert "initialising the video model from an image ViT" in caplog.text
    if dropped:
        assert dropped in caplog.text
    for fact in ("act", "norm_eps", "pre_norm", "init_values", "qkv_bias", "mean", "std"):
        assert getattr(video.cfg, fact) == getattr(vit.cfg, fact), fact
    clip = torch.randn(2, 3, 2, 32, 32)
    with torch.no_grad():
        assert max_diff(video.forward_features(clip), vit.forward_features(clip[:, :, 1])) <= TOL


@pytest.mark.parametrize("source", ["clip", "deit-distilled", "siglip"], indirect=True)
def test_factorised_encoder_spatial_stage_is_the_vit_on_every_frame(source):
    """The per-frame trunk (shared by fact_enc, vtn, frame_avg): CLIP's pre-norm, a dropped token, no class token."""
    name, vit, _ = source
    video = vitzoo.create("vivit_fact_enc_nano_8x2", pretrained=name, **_video_options(vit, num_frames=4)).eval()
    clip = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        spatial = rearrange(video.encoder.forward_spatial(video.patch_embed(clip)), "b t d -> (b t) d")
        frames = rearrange(clip[:, :, 1::2], "b c t h w -> (b t) c h w")  # the middle frame of every tubelet
        ref = vit.forward_head(vit.forward_features(frames), pre_logits=True)  # class token, or mean of tokens
    assert max_diff(spatial, ref) <= TOL


def test_clip_pre_norm_needs_an_encoder_with_a_vit_trunk(tmp_path, hub_cache):
    _, folder = timm_folder(tmp_path, "vit_base_patch16_clip_224.openai")
    name = hub_cache.add("timm/vit_base_patch16_clip_224.openai", folder)
    with pytest.raises(ValueError, match="openai was trained with: pre_norm=True .*'fact_sa' encoder has none"):
        vitzoo.create("vivit_fact_sa_nano_8x2", pretrained=name, embed_dim=48, num_heads=3)
    video = vitzoo.create("vivit_joint_nano_8x2", pretrained=name, embed_dim=48, num_heads=3)
    assert torch.all(video.patch_embed.proj.bias == 0)  # CLIP's patch embedding has no bias


def test_explicit_overrides_win_over_the_checkpoint_and_a_mismatch_is_refused(tmp_path, hub_cache, caplog):
    _, folder = timm_folder(tmp_path, "vit_base_patch16_clip_224.openai")
    name = hub_cache.add("timm/vit_base_patch16_clip_224.openai", folder)
    with caplog.at_level(logging.WARNING, logger="vitzoo"):
        model = vitzoo.create("vit_nano_patch8_32", pretrained=name, embed_dim=48, num_heads=3, act="quick_gelu")
    assert model.cfg.act == "quick_gelu" and model.cfg.pre_norm  # timm's CLIP uses GELU; QuickGELU asked for
    assert "act='quick_gelu' set explicitly" in caplog.text
    plain = vitzoo.create("vit_nano_patch8_32", embed_dim=48, num_heads=3)
    with pytest.raises(ValueError, match="was trained with norm_eps=1e-05, pre_norm=True but the model has"):
        vitzoo.checkpoints.load_pretrained(plain, name)
