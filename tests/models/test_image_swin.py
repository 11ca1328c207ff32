"""The image Swin speaks timm's Swin layouts: images ``(B, C, H, W)`` in, ``NHWC`` features out, ``NCHW`` stage maps;
its parameters are a one-frame Video Swin's, so files saved before it had its own config still load."""

from __future__ import annotations

import dataclasses

import pytest
import timm
import torch

import vitzoo
from tests.helpers.hub_sources import perturbed
from vitzoo.models.swin import ImageSwin, VideoSwin
from vitzoo.models.swin_config import ImageSwinConfig, SwinConfig

TOL = 1e-5


def _perturbed(model: torch.nn.Module) -> torch.nn.Module:
    return perturbed(model, scale=0.05)


def _timm_swin() -> torch.nn.Module:
    """timm's Swin at swin_nano_patch4_window4_32's layout."""
    return timm.create_model(
        "swin_tiny_patch4_window7_224", pretrained=False, img_size=32, embed_dim=32, depths=(2, 2), num_heads=(2, 4),
        window_size=4, num_classes=16,
    )  # fmt: skip


def test_image_swin_takes_images_and_computes_the_one_frame_video_swin():
    image = _perturbed(vitzoo.create("swin_nano_patch4_window4_32", num_classes=16))
    fields = {f.name: getattr(image.cfg, f.name) for f in dataclasses.fields(image.cfg)}
    one_frame = VideoSwin(SwinConfig(**fields)).eval()
    one_frame.load_state_dict(image.state_dict())  # the same parameters, key for key
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        features = image.forward_features(x)  # (B, h, w, C)
        tokens = one_frame.forward_features(x[:, :, None])  # (B, 1*h*w, C)
        torch.testing.assert_close(features.flatten(1, 2), tokens, rtol=0, atol=0)
        torch.testing.assert_close(image(x), one_frame(x[:, :, None]), rtol=0, atol=0)
    assert isinstance(image, ImageSwin) and image.modality == "image" and image.input_shape == (3, 32, 32)
    assert features.shape == (2, 4, 4, 64) and image.output_fmt == "NHWC"
    with pytest.raises(ValueError, match=r"expected image input \(B, C, H, W\)"):
        image(x[:, :, None])


def test_image_swin_matches_timm_swin_layouts(tmp_path):
    """timm's state dict loads into the image Swin; features, logits and stage maps equal timm's in timm's layouts."""
    reference = _perturbed(_timm_swin())
    torch.save(reference.state_dict(), tmp_path / "timm.pth")
    ours = vitzoo.create("swin_nano_patch4_window4_32", pretrained=tmp_path / "timm.pth", num_classes=16).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours.forward_features(x), reference.forward_features(x), rtol=0, atol=TOL)
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=TOL)
        pooled = ours.forward_head(ours.forward_features(x), pre_logits=True)
        torch.testing.assert_close(pooled, reference.forward_head(reference.forward_features(x), pre_logits=True),
                                   rtol=0, atol=TOL)  # fmt: skip
        ref_maps = reference.forward_intermediates(x, intermediates_only=True)  # timm's Swin: NCHW only
        nchw = ours.forward_intermediates(x, intermediates_only=True)
        nhwc = ours.forward_intermediates(x, output_fmt="NHWC", intermediates_only=True)
        for a, b, c in zip(nchw, nhwc, ref_maps, strict=True):
            torch.testing.assert_close(a, c, rtol=0, atol=TOL)
            torch.testing.assert_close(b, c.permute(0, 2, 3, 1), rtol=0, atol=TOL)
    ours.reset_classifier(0, "")
    with torch.no_grad():
        assert ours(x).shape == (2, 4, 4, 64)  # unpooled, as timm's Swin with global_pool=""
    assert ours.feature_info == [
        dict(module="layers.0", num_chs=32, reduction=4),
        dict(module="layers.1", num_chs=64, reduction=8),
    ]


def test_a_one_frame_swin_file_of_before_loads_into_the_image_swin(tmp_path):
    """Files written when image Swins were one-frame ``SwinConfig`` models: ``pretrained=`` reads them as images."""
    image = _perturbed(vitzoo.create("swin_nano_patch4_window4_32", num_classes=16))
    fields = {f.name: getattr(image.cfg, f.name) for f in dataclasses.fields(image.cfg)}
    old = VideoSwin(SwinConfig(**fields))
    old.load_state_dict(image.state_dict())
    vitzoo.save(old, tmp_path / "old.safetensors")
    loaded = vitzoo.create("swin_nano_patch4_window4_32", pretrained=tmp_path / "old.safetensors", num_classes=16)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(x), image(x), rtol=0, atol=0)
    video = vitzoo.create("video_swin_nano_4x2", pretrained=vitzoo.save(image, tmp_path / "new.safetensors"))
    assert isinstance(video, VideoSwin) and video.modality == "video"  # the image Swin still inflates


def test_image_swin_config_refuses_a_video_layout():
    with pytest.raises(ValueError, match=r"an image Swin has num_frames=1.*num_frames=8.*video_swin"):
        ImageSwinConfig(num_frames=8).validate()
    with pytest.raises(ValueError, match=r"window_size=\(2, 7, 7\)"):
        ImageSwinConfig(window_size=(2, 7, 7)).validate()
