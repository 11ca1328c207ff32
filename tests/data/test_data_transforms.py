"""Clip transforms: one random draw per clip, layouts, flip switch, three-crop, normalisation."""

from __future__ import annotations

import pytest
import torch

from vitzoo.data import eval_transform, parse_randaugment, three_crop, train_transform

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _constant_frames_clip(t=6, h=40, w=56, seed=0) -> torch.Tensor:
    """(T, C, H, W) uint8 whose frames are all the same random image."""
    g = torch.Generator().manual_seed(seed)
    frame = torch.randint(0, 256, (1, 3, h, w), dtype=torch.uint8, generator=g)
    return frame.expand(t, -1, -1, -1).clone()


def _asymmetric_clip(t=4, h=32, w=32) -> torch.Tensor:
    """Left half dark, right half bright: a flip is visible."""
    clip = torch.zeros(t, 3, h, w, dtype=torch.uint8)
    clip[..., w // 2 :] = 255
    return clip


@pytest.mark.parametrize("randaugment", [None, "rand-m9-n2", "rand-m15-n3"])
def test_train_transform_same_for_every_frame(randaugment):
    transform = train_transform(img_size=24, mean=MEAN, std=STD, randaugment=randaugment)
    torch.manual_seed(0)
    for seed in range(25):
        out = transform(_constant_frames_clip(seed=seed))
        assert out.shape == (3, 6, 24, 24) and out.dtype == torch.float32
        assert torch.equal(out, out[:, :1].expand_as(out)), f"frames differ after transform (seed {seed})"


def test_train_transform_is_random_across_clips():
    transform = train_transform(img_size=24, mean=MEAN, std=STD)
    clip = _constant_frames_clip()
    torch.manual_seed(0)
    outs = [transform(clip) for _ in range(5)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])
    torch.manual_seed(0)
    assert torch.equal(outs[0], transform(clip))  # reproducible from the torch seed


def test_hflip_switch():
    clip = _asymmetric_clip()
    no_flip = train_transform(img_size=32, mean=(0, 0, 0), std=(1, 1, 1), scale=(1, 1), ratio=(1, 1), hflip=False)
    flip = train_transform(img_size=32, mean=(0, 0, 0), std=(1, 1, 1), scale=(1, 1), ratio=(1, 1), hflip=True)
    torch.manual_seed(0)
    assert all(no_flip(clip)[..., 0].max() == 0 for _ in range(30))  # left column stays dark
    flipped = [flip(clip)[..., 0].min().item() == 1.0 for _ in range(60)]
    assert 5 < sum(flipped) < 55  # p = 0.5, whole clip at once
    out = flip(clip)
    assert torch.equal(out, out[:, :1].expand_as(out))


def test_eval_transform_centre_crop_deterministic():
    transform = eval_transform(img_size=32, mean=MEAN, std=STD)
    clip = _constant_frames_clip(h=48, w=80)
    out = transform(clip)
    assert out.shape == (3, 6, 32, 32)
    assert torch.equal(out, transform(clip))


def test_eval_transform_resize_then_crop():
    out = eval_transform(img_size=32, mean=MEAN, std=STD, resize=40)(_constant_frames_clip(h=48, w=80))
    assert out.shape == (3, 6, 32, 32)
    with pytest.raises(ValueError):
        eval_transform(img_size=32, mean=MEAN, std=STD, resize=16)


@pytest.mark.parametrize(("h", "w"), [(48, 80), (80, 48), (40, 40)])
def test_three_crop_shapes_and_positions(h, w):
    rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
    cols = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)
    clip = torch.stack([rows, cols, rows]).expand(2, 3, h, w)  # (T, C, H, W): channel 0 row, 1 column
    s = min(h, w)
    crops = three_crop(clip, s)
    assert crops.shape == (3, 2, 3, s, s)
    first = [(crops[i, 0, 0, 0, 0].item(), crops[i, 0, 1, 0, 0].item()) for i in range(3)]  # (row, col)
    long_off = [0, (max(h, w) - s) // 2, max(h, w) - s]
    if w >= h:  # left, centre, right
        assert first == [(0, o) for o in long_off]
    else:  # top, centre, bottom
        assert first == [(o, 0) for o in long_off]


def test_eval_three_crop_output():
    transform = eval_transform(img_size=32, mean=MEAN, std=STD, num_crops=3)
    out = transform(_constant_frames_clip(h=48, w=96))
    assert out.shape == (3, 3, 6, 32, 32)  # (crops, C, T, H, W)
    assert not torch.equal(out[0], out[2])
    assert transform.num_crops == 3
    with pytest.raises(ValueError):
        eval_transform(img_size=32, mean=MEAN, std=STD, num_crops=2)


def test_three_crop_needs_short_side():
    with pytest.raises(ValueError):
        three_crop(torch.zeros(2, 3, 40, 50), 32)


def test_normalisation_uses_mean_and_std():
    clip = torch.full((2, 3, 16, 16), 255, dtype=torch.uint8)
    clip[:, 1] = 0
    clip[:, 2] = 128
    out = eval_transform(img_size=16, mean=MEAN, std=STD)(clip)
    expected = [(1 - MEAN[0]) / STD[0], (0 - MEAN[1]) / STD[1], (128 / 255 - MEAN[2]) / STD[2]]
    for c in range(3):
        torch.testing.assert_close(out[c], torch.full_like(out[c], expected[c]))


def test_output_layout_is_cthw():
    clip = torch.zeros(5, 3, 16, 16, dtype=torch.uint8)
    clip[2] = 255  # frame 2 bright
    out = eval_transform(img_size=16, mean=(0, 0, 0), std=(1, 1, 1))(clip)
    assert out.shape == (3, 5, 16, 16)
    assert out[:, 2].min() == 1.0 and out[:, [0, 1, 3, 4]].max() == 0.0
    assert type(out) is torch.Tensor  # plain tensor, not a tv_tensors.Video


def test_rejects_wrong_layout():
    with pytest.raises(ValueError, match="T, C, H, W"):
        eval_transform(img_size=16, mean=MEAN, std=STD)(torch.zeros(4, 16, 16, 3, dtype=torch.uint8))


def test_parse_randaugment():
    ra = parse_randaugment("rand-m7-n3")
    assert (ra.magnitude, ra.num_ops) == (7, 3)
    for bad in ["auto-m9", "rand-m9-mstd0.5", "rand-m40", "rand-x1"]:
        with pytest.raises(ValueError):
            parse_randaugment(bad)
