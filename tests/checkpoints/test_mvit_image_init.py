"""Video MViTv2 initialised from timm's image MViTv2: exact on a clip of identical frames where the layouts match;
key by key for the published models (whose key/value strides differ, see vitzoo.checkpoints.mvit_image_init)."""

from __future__ import annotations

import pytest
import torch
from timm.models.mvitv2 import MultiScaleVit, MultiScaleVitCfg

import vitzoo
from vitzoo.checkpoints.mvit_image_init import init_from_image, mvit_image_to_video

TOL = 1e-5


def _image_model(*, cls_token: bool) -> MultiScaleVit:
    """A two-stage timm image MViTv2 at 32 px with every weight perturbed (tables and norms too)."""
    cfg = MultiScaleVitCfg(depths=(1, 2), embed_dim=32, num_heads=1, use_cls_token=cls_token,
                           stride_q=((1, 1), (2, 2)), stride_kv_adaptive=(4, 4))  # fmt: skip
    model = MultiScaleVit(cfg, img_size=32, num_classes=7).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def _video_twin(*, cls_token: bool, **overrides):
    """vitzoo's MViTv2 with the image model's layout: same strides, pooling residual and readout."""
    layout = dict(widths=(32, 64), num_heads=(1, 2), depths=(1, 2), kv_strides=((1, 4, 4), (1, 2, 2)),
                  q_strides=((1, 1, 1), (1, 2, 2)), class_token=cls_token, residual_with_cls=cls_token,
                  global_pool="token" if cls_token else "avg", num_classes=7, num_frames=4, img_size=32)  # fmt: skip
    return vitzoo.create("mvitv2_nano_4x2", **{**layout, **overrides}).eval()


def _identical_frames(frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.randn(2, 3, 32, 32)
    return image, image[:, :, None].expand(-1, -1, frames, -1, -1)  # (B, C, T, H, W), the image at every frame


@pytest.mark.parametrize(("cls_token", "frames"), [(False, 4), (True, 2)])
def test_identical_frames_reproduce_the_image_model(cls_token, frames):
    image_model = _image_model(cls_token=cls_token)
    video = _video_twin(cls_token=cls_token, num_frames=frames)
    report = init_from_image(video, image_model)
    image, clip = _identical_frames(frames)
    with torch.no_grad():
        expected, got = image_model(image), video(clip)
    assert (got - expected).abs().max() <= TOL
    assert report.new == [] and report.dropped == []
    assert len(report.inflated) == 1 + 3 * 3  # the stem, and q/k/v pooling of the 3 blocks
    assert report.zeroed == [f"stages.{s}.blocks.{j}.attn.rel_pos_t" for s, j in ((0, 0), (1, 0), (1, 1))]


def test_a_class_token_is_exact_only_on_one_token_time_step():
    """With T > 1 token time steps every grid key appears T times but the class-token key once, so softmax moves
    weight from the class token to the grid by a factor T: exactness cannot hold (2 frames: T = 1; 4 frames: 2)."""
    image_model = _image_model(cls_token=True)
    video = _video_twin(cls_token=True, num_frames=4)
    init_from_image(video, image_model)
    image, clip = _identical_frames(4)
    with torch.no_grad():
        assert (video(clip) - image_model(image)).abs().max() > 1e-3


def test_averaging_inflation_breaks_exactness():
    """Negative control: kernels spread over time see the zero padding at the clip's ends."""
    image_model = _image_model(cls_token=False)
    video = _video_twin(cls_token=False)
    init_from_image(video, image_model, inflate="average")
    image, clip = _identical_frames(4)
    with torch.no_grad():
        assert (video(clip) - image_model(image)).abs().max() > 1e-3


def test_the_temporal_table_cancels_on_identical_frames_without_a_class_token():
    """q . R_t[t_i - t_j] shifts every key of time step t_j by the same amount, and every time step holds the same
    keys, so the shift factors out of the softmax: the zero start of rel_pos_t is a choice, not what makes it exact."""
    image_model = _image_model(cls_token=False)
    video = _video_twin(cls_token=False)
    init_from_image(video, image_model)
    image, clip = _identical_frames(4)
    with torch.no_grad():
        for name, p in video.named_parameters():
            if name.endswith("rel_pos_t"):
                p.normal_(std=0.5)
        assert (video(clip) - image_model(image)).abs().max() <= TOL
        assert (video(torch.randn_like(clip)) - video(clip)).abs().max() > 1e-3  # and the model does see the clip


def test_published_small_maps_key_by_key_onto_mvitv2_small_16x4():
    """timm's mvitv2_small (no class token, key/value stride 4x4) onto torchvision's video MViTv2-S layout."""
    import timm

    with torch.device("meta"):  # built without its (slow) initialisation, then filled with random values
        image_model = timm.create_model("mvitv2_small", pretrained=False).to_empty(device="cpu")
        video = vitzoo.create("mvitv2_small_16x4")
    with torch.no_grad():
        for p in image_model.parameters():
            p.normal_()
    state, report = mvit_image_to_video(image_model, video)
    target = video.state_dict()
    assert state.keys() == target.keys() and all(state[k].shape == target[k].shape for k in target)
    assert report.new == ["cls_token", "head.weight", "head.bias"]  # no class token; 1000 vs 400 classes
    assert report.dropped == []
    assert len(report.zeroed) == 16 and all(k.endswith("rel_pos_t") for k in report.zeroed)
    assert len(report.inflated) == 1 + 3 * 16
    # only where the key strides change a table's length: stage 2's first block pools keys to a 28x28 grid in the
    # image model (stride 1) but to 14x14 in the video one (stride 2), so its 55-long tables are resampled to 27
    assert report.resampled == ["stages.2.blocks.0.attn.rel_pos_h", "stages.2.blocks.0.attn.rel_pos_w"]
    src = dict(image_model.state_dict())
    for key in report.copied:
        torch.testing.assert_close(state[key], src[key], rtol=0, atol=0)
    for key in report.inflated:  # the 2-D kernel at the middle frame, zeros at the others
        kernel = state[key]
        torch.testing.assert_close(kernel[:, :, 1], src[key], rtol=0, atol=0)
        assert not kernel[:, :, 0].any() and not kernel[:, :, 2].any()


def test_a_different_layout_is_refused():
    image_model = _image_model(cls_token=False)
    with pytest.raises(ValueError, match=r"stages\.1\.blocks\.2"):
        mvit_image_to_video(image_model, _video_twin(cls_token=False, depths=(1, 3)))
    with pytest.raises(ValueError, match="widths or heads differ"):
        mvit_image_to_video(image_model, _video_twin(cls_token=False, widths=(32, 96), num_heads=(1, 3)))


def test_an_image_vit_checkpoint_is_refused_with_one_line(tmp_path):
    path = vitzoo.save(vitzoo.create("vit_nano_patch8_32"), tmp_path / "vit.safetensors")
    with pytest.raises(ValueError, match="MViT cannot be initialised from an image ViT"):
        vitzoo.create("mvitv2_nano_4x2", pretrained=path)
