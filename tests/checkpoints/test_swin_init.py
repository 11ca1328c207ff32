"""Video Swin initialised from an image Swin (torchvision, timm, vitzoo one-frame): a clip of identical frames gives
the image model's logits; the fix-ups (kernel inflation, bias tables) on their own; ``pretrained=`` paths."""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision

import vitzoo
from vitzoo.checkpoints.swin_2d_to_3d import image_swin_state, inflate_image_swin, inflate_table
from vitzoo.convert import from_torchvision

TOL = 1e-5


def _perturbed(model: torch.nn.Module, scale: float = 0.02) -> torch.nn.Module:
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale)
    return model.eval()


def _clip(image: torch.Tensor, frames: int) -> torch.Tensor:
    return image[:, :, None].expand(-1, -1, frames, -1, -1).contiguous()  # (B, C, T, H, W), identical frames


def _small_torchvision_swin():
    return torchvision.models.SwinTransformer([4, 4], 32, [2, 2], [2, 4], [4, 4], num_classes=16)


def _small_timm_swin():
    return timm.create_model(
        "swin_tiny_patch4_window7_224", pretrained=False, img_size=32, embed_dim=32, depths=(2, 2), num_heads=(2, 4),
        window_size=4, num_classes=16,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("source", ["torchvision", "timm"])
def test_swin_t_into_video_swin_tiny_on_identical_frames_at_224(source):
    """torchvision ``swin_t`` / timm ``swin_tiny_patch4_window7_224`` at 224 px (every stage divides by the 7 x 7
    window); 8 token steps in temporal windows of 4 (shifted by 2, masked)."""
    if source == "timm":
        image_model = _perturbed(timm.create_model("swin_tiny_patch4_window7_224", pretrained=False))
    else:
        image_model = _perturbed(torchvision.models.swin_t())
    video = vitzoo.create("video_swin_tiny_4x2", num_frames=16, window_size=(4, 7, 7), num_classes=1000).eval()
    inflate_image_swin(image_model, video)
    image = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected = image_model(image)
        torch.testing.assert_close(video(_clip(image, 16)), expected, rtol=0, atol=TOL)
        if source == "torchvision":
            one_frame = from_torchvision(image_model).eval()  # the image Swin as vitzoo's one-frame model
            torch.testing.assert_close(one_frame(image[:, :, None]), expected, rtol=0, atol=TOL)


@pytest.mark.parametrize("source", ["timm", "torchvision"])
def test_small_image_swins_into_video_swin_nano(source):
    image_model = _perturbed(_small_timm_swin() if source == "timm" else _small_torchvision_swin(), scale=0.05)
    video = vitzoo.create("video_swin_nano_4x2", num_classes=16).eval()  # 8 frames, windows 2 x 4 x 4
    inflate_image_swin(image_model, video)
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(video(_clip(image, 8)), image_model(image), rtol=0, atol=TOL)
        assert (video(torch.randn(2, 3, 8, 32, 32)) - image_model(image)).abs().max() > 1e-3  # negative control


def test_vitzoo_one_frame_swin_into_video_at_clipped_windows():
    """The micro models at 32 px: the last stage (2 x 2 tokens) clips the 4 x 4 window; with the geometric bias of
    clipped windows the inflated model still equals the image model, with torchvision's prefix rule it would not."""
    image_model = _perturbed(vitzoo.create("swin_micro_patch4_window4_32", num_classes=16), scale=0.05)
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = image_model(image)
        for rule, exact in (("relative", True), ("torchvision", False)):
            image_model.cfg.clipped_window_bias = rule
            for stage in image_model.layers:
                stage.clipped_window_bias, stage._plans = rule, type(stage._plans)()
            video = vitzoo.create("video_swin_micro_4x2", num_classes=16, clipped_window_bias=rule).eval()
            inflate_image_swin(image_model.state_dict(), video)
            diff = (video(_clip(image, 8)) - image_model(image)).abs().max()
            assert (diff <= TOL) == exact, (rule, float(diff))
            if rule == "relative":
                torch.testing.assert_close(image_model(image), expected, rtol=0, atol=0)


def test_pretrained_accepts_every_image_swin_layout(tmp_path):
    """``vitzoo.create(video, pretrained=file)``: a vitzoo one-frame file, timm and torchvision state dicts."""
    vitzoo_image = _perturbed(vitzoo.create("swin_nano_patch4_window4_32", num_classes=16), scale=0.05)
    vitzoo.save(vitzoo_image, tmp_path / "image.safetensors")
    timm_model = _perturbed(_small_timm_swin(), scale=0.05)
    torch.save(timm_model.state_dict(), tmp_path / "timm.pth")
    tv_model = _perturbed(_small_torchvision_swin(), scale=0.05)
    torch.save(tv_model.state_dict(), tmp_path / "tv.pth")
    image = torch.randn(2, 3, 32, 32)
    for file, reference in (("image.safetensors", vitzoo_image), ("timm.pth", timm_model),
                            ("tv.pth", tv_model)):  # fmt: skip
        video = vitzoo.create("video_swin_nano_4x2", pretrained=tmp_path / file, num_classes=16).eval()
        with torch.no_grad():
            torch.testing.assert_close(video(_clip(image, 8)), reference(image), rtol=0, atol=TOL, msg=file)
    fresh = vitzoo.create("video_swin_nano_4x2", pretrained=tmp_path / "image.safetensors", num_classes=4)
    assert fresh.head.weight.shape == (4, 64)  # another class count: a new head


def test_image_swin_of_another_layout_is_refused_naming_the_facts(tmp_path):
    micro = vitzoo.save(vitzoo.create("swin_micro_patch4_window4_32"), tmp_path / "micro.safetensors")
    with pytest.raises(ValueError, match=r"widths=\(32, 64, 128\).*widths=\(32, 64\)"):
        vitzoo.create("video_swin_nano_4x2", pretrained=micro)
    with pytest.raises(ValueError, match="not an image Swin state dict"):
        image_swin_state({"patch_embed.proj.weight": torch.zeros(8, 3, 2, 4, 4)})


def test_kernel_inflation_follows_tubelet_init(tmp_path):
    image_model = vitzoo.create("swin_nano_patch4_window4_32")
    kernel = image_model.patch_embed.proj.weight  # (D, C, 1, p, p)
    video = inflate_image_swin(image_model, vitzoo.create("video_swin_nano_4x2", num_classes=1000))
    torch.testing.assert_close(video.patch_embed.proj.weight, kernel.repeat(1, 1, 2, 1, 1) / 2, rtol=0, atol=0)
    path = vitzoo.save(image_model, tmp_path / "image.safetensors")
    central = vitzoo.create("video_swin_nano_4x2", pretrained=path, tubelet_init="central").patch_embed.proj.weight
    torch.testing.assert_close(central[:, :, 1:], kernel, rtol=0, atol=0)  # the middle frame of 2 is frame 1
    assert not central[:, :, 0].any()


@pytest.mark.filterwarnings("ignore::UserWarning")  # timm's interpolation (without scipy) warns about its own inputs
def test_bias_table_is_tiled_over_time_and_resampled_in_space():
    table = torch.randn(7 * 7, 3)  # a 4 x 4 window
    tiled = inflate_table(table, source_window=(4, 4), window=(3, 4, 4))
    assert tiled.shape == (5 * 49, 3)
    for dt in range(5):
        torch.testing.assert_close(tiled[dt * 49 : (dt + 1) * 49], table, rtol=0, atol=0)
    resized = inflate_table(table, source_window=(4, 4), window=(2, 7, 7))  # (2*7-1)^2 rows per temporal offset
    assert resized.shape == (3 * 169, 3)
    torch.testing.assert_close(resized[:169], resized[169:338], rtol=0, atol=0)
    flat = inflate_table(torch.full((49, 3), 0.5), source_window=(4, 4), window=(1, 7, 7))
    torch.testing.assert_close(flat, torch.full((169, 3), 0.5), rtol=0, atol=1e-5)  # a constant stays constant
    center = resized.view(3, 13, 13, 3)[1, 6, 6]  # offset (0, 0, 0)
    torch.testing.assert_close(center, table.view(7, 7, 3)[3, 3], rtol=0, atol=1e-4)
