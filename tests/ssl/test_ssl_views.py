"""Views: per-clip spatial augmentation is shared by the frames of a view and differs across views.

Clips become views through :mod:`vitzoo.data.views` (what the multi-view datasets of an SSL recipe run), each clip
through a :class:`~vitzoo.data.transforms.ClipTransform` around an SSL pipeline of :mod:`vitzoo.ssl.views`.
"""

from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from vitzoo.data.errors import DataConfigError
from vitzoo.data.transforms import ClipTransform
from vitzoo.data.views import make_views, stack_views, view_transforms
from vitzoo.ssl.views import (
    ImageViews,
    RandomGrayscale,
    byol_augment,
    cvrl_augment,
    simclr_augment,
    ssl_augment,
)

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def clip_views(pipelines: list, clips: torch.Tensor) -> torch.Tensor:
    """``V`` clips ``(V, T, C, H, W)`` uint8 -> ``(V, C, T, H, W)``: one pipeline for every clip, or one per clip."""
    transforms = [ClipTransform(p) for p in pipelines]
    transform = transforms[0] if len(transforms) == 1 else transforms
    return stack_views(make_views(clips, view_transforms(transform, len(clips))))


def textured(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)


def test_image_views_shape_and_independent_draws():
    image = textured((3, 48, 40))
    views = ImageViews([simclr_augment(img_size=32, mean=MEAN, std=STD)] * 3)(image)
    assert views.shape == (3, 3, 32, 32) and views.dtype == torch.float32
    assert not torch.equal(views[0], views[1]) and not torch.equal(views[1], views[2])


@pytest.mark.parametrize("augment", [simclr_augment, cvrl_augment])
def test_clip_views_are_consistent_within_a_clip_and_differ_across_clips(augment):
    torch.manual_seed(1)
    frame = textured((3, 48, 40))
    clips = frame.expand(2, 4, 3, 48, 40).clone()  # (V, T, C, H, W): every frame identical
    views = clip_views([augment(img_size=32, mean=MEAN, std=STD)], clips)  # (V, C, T, H, W)
    assert views.shape == (2, 3, 4, 32, 32)
    for v in range(2):
        for t in range(1, 4):
            assert torch.equal(views[v, :, t], views[v, :, 0])  # same crop, flip, jitter, blur on every frame
    assert not torch.equal(views[0], views[1])  # each clip its own draw


def test_per_frame_augmentation_would_be_caught():
    """Negative control: applying the pipeline frame by frame (as images) breaks the consistency check."""
    torch.manual_seed(1)
    frame = textured((3, 48, 40))
    aug = simclr_augment(img_size=32, mean=MEAN, std=STD)
    frames = torch.stack([aug(frame.clone()).as_subclass(torch.Tensor) for _ in range(4)])  # (T, C, H, W)
    assert any(not torch.equal(frames[t], frames[0]) for t in range(1, 4))


def test_byol_pair_is_asymmetric():
    first, second = byol_augment(img_size=32, mean=MEAN, std=STD)

    def probability(pipeline, kind):
        for t in pipeline.transforms:
            if isinstance(t, v2.RandomApply) and isinstance(t.transforms[0], kind):
                return t.p
            if isinstance(t, kind):
                return t.p
        raise AssertionError(kind)

    assert probability(first, v2.GaussianBlur) == 1.0 and probability(second, v2.GaussianBlur) == 0.1
    assert probability(first, v2.RandomSolarize) == 0.0 and probability(second, v2.RandomSolarize) == 0.2
    assert probability(first, v2.ColorJitter) == 0.8 and probability(first, RandomGrayscale) == 0.2
    views = ImageViews([first, second])(textured((3, 40, 40)))
    assert views.shape == (2, 3, 32, 32)


def test_grayscale_turns_videos_gray_too():
    """torchvision 0.29's v2.RandomGrayscale leaves a tv_tensors.Video in colour (the negative control); ours does
    not, in the pipeline and alone, and equals torchvision's on an image."""
    video = tv_tensors.Video(textured((4, 3, 40, 40)))
    image = tv_tensors.Image(textured((3, 40, 40)))
    assert torch.equal(v2.RandomGrayscale(p=1.0)(video), video)  # torchvision: unchanged
    gray = RandomGrayscale(p=1.0)(video)
    assert isinstance(gray, tv_tensors.Video) and torch.equal(gray[:, 0], gray[:, 1])
    assert torch.equal(gray[:, 1], gray[:, 2]) and not torch.equal(video[:, 0], video[:, 1])
    assert torch.equal(RandomGrayscale(p=1.0)(image), v2.RandomGrayscale(p=1.0)(image))
    assert torch.equal(RandomGrayscale(p=0.0)(video), video)
    aug = ssl_augment(img_size=32, mean=MEAN, std=STD, grayscale_p=1.0, jitter_p=0.0, blur_p=0.0)
    views = clip_views([aug], textured((2, 4, 3, 40, 40)))  # (V, C, T, H, W)
    assert torch.equal(views[:, 0], views[:, 1]) and torch.equal(views[:, 0], views[:, 2])


def test_clip_views_check_inputs():
    aug = simclr_augment(img_size=32, mean=MEAN, std=STD)
    with pytest.raises(DataConfigError, match="2 transforms .* num_clips=3"):  # neither 1 nor one per clip
        clip_views([aug, aug], textured((3, 2, 3, 40, 40)))
    with pytest.raises(ValueError, match=r"\(T, C, H, W\) clip"):  # a clip (V, C, H, W) without its frames axis
        clip_views([aug], textured((2, 3, 40, 40)))
    with pytest.raises(ValueError, match="blur_p"):
        simclr_augment(img_size=32, mean=MEAN, std=STD, blur_p=1.5)
