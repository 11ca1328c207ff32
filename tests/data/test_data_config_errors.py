"""Bad options fail when the object is built, as one-line DataConfigError naming the value (CLI exit 2)."""

from __future__ import annotations

import pytest
import torch

from vitzoo.data import (
    AnnotationError,
    DataConfigError,
    DenseSampler,
    SegmentSampler,
    VideoClipDataset,
    VideoListDataset,
    VideoReader,
    eval_transform,
    make_loader,
    make_mixup,
    train_transform,
)

MEAN = STD = (0.5, 0.5, 0.5)


def _train(**kwargs):
    return train_transform(**{"img_size": 16, "mean": MEAN, "std": STD, **kwargs})


def _eval(**kwargs):
    return eval_transform(**{"img_size": 16, "mean": MEAN, "std": STD, **kwargs})


def _dataset(videos, **kwargs):
    return VideoClipDataset(**{"samples": [(videos.index, 0)], "sampler": SegmentSampler(2), **kwargs})


BAD_OPTIONS = {
    "dense frame_interval=0": (lambda v: DenseSampler(8, frame_interval=0), "frame_interval=0"),
    "dense frame_interval<0": (lambda v: DenseSampler(8, frame_interval=-2), "frame_interval=-2"),
    "dense frame_interval=nan": (lambda v: DenseSampler(8, frame_interval=float("nan")), "frame_interval=nan"),
    "dense num_frames=0": (lambda v: DenseSampler(0), "num_frames=0"),
    "dense num_frames=2.5": (lambda v: DenseSampler(2.5), "num_frames=2.5"),
    "dense num_clips=0": (lambda v: DenseSampler(8, num_clips=0), "num_clips=0"),
    "dense target_fps=0": (lambda v: DenseSampler(8, target_fps=0), "target_fps=0"),
    "dense pad": (lambda v: DenseSampler(8, pad="zeros"), "pad='zeros'"),
    "segment num_segments=0": (lambda v: SegmentSampler(0), "num_segments=0"),
    "segment num_clips=-1": (lambda v: SegmentSampler(8, num_clips=-1), "num_clips=-1"),
    "train scale reversed": (lambda v: _train(scale=[2, 1]), "scale=[2, 1]"),
    "train scale min>max": (lambda v: _train(scale=(0.9, 0.2)), "scale=[0.9, 0.2]"),
    "train scale zero": (lambda v: _train(scale=(0.0, 1.0)), "scale=[0.0, 1.0]"),
    "train scale not a pair": (lambda v: _train(scale=0.5), "scale=0.5"),
    "train ratio min>max": (lambda v: _train(ratio=(2.0, 0.5)), "ratio=[2.0, 0.5]"),
    "train img_size=0": (lambda v: _train(img_size=0), "img_size=0"),
    "train std=0": (lambda v: _train(std=(0.5, 0.0, 0.5)), "std=[0.5, 0.0, 0.5]"),
    "train mean of 2": (lambda v: _train(mean=(0.5, 0.5)), "mean=(0.5, 0.5)"),
    "train randaugment": (lambda v: _train(randaugment="rand-m40-n2"), "magnitude"),
    "eval num_crops=2": (lambda v: _eval(num_crops=2), "num_crops=2"),
    "eval resize<img_size": (lambda v: _eval(resize=8), "resize=8"),
    "dataset on_error": (lambda v: _dataset(v, on_error="ignore"), "on_error='ignore'"),
    "dataset max_retries": (lambda v: _dataset(v, max_retries=-1), "max_retries=-1"),
    "dataset backend": (lambda v: _dataset(v, backend="cv2"), "backend='cv2'"),
    "dataset decode_short_side": (lambda v: _dataset(v, decode_short_side=0), "decode_short_side=0"),
    "dataset num_threads": (lambda v: _dataset(v, num_threads=-1), "num_threads=-1"),
    "dataset no samples": (lambda v: _dataset(v, samples=[]), "no samples"),
    "dataset label > classes": (lambda v: _dataset(v, samples=[(v.index, 2)], classes=["a", "b"]), "0..1"),
    "dataset negative label": (lambda v: _dataset(v, samples=[(v.index, -1)]), "label -1"),
    "dataset not a sampler": (lambda v: _dataset(v, sampler=8), "sampler=8"),
    "dataset views w/o multi_view": (lambda v: _dataset(v, sampler=SegmentSampler(2, num_clips=2)), "multi_view=True"),
    "dataset 3 crops w/o multi_view": (lambda v: _dataset(v, transform=_eval(num_crops=3)), "multi_view=True"),
    "dataset transforms != clips": (
        lambda v: _dataset(v, sampler=SegmentSampler(2, num_clips=3), transform=[_eval(), _eval()], multi_view=True),
        "num_clips=3",
    ),
    "dataset transform not callable": (
        lambda v: _dataset(v, transform=[_eval(), "crop"], multi_view=True),
        "transform[1] is a str",
    ),
    "dataset transform a string": (lambda v: _dataset(v, transform="crop"), "transform is a str"),
    "dataset repeated classes": (lambda v: _dataset(v, classes=["a", "b", "a"]), "classes repeats ['a']"),
    "dataset empty classes": (lambda v: _dataset(v, classes=[]), "classes=[]"),
    "list dataset root missing": (
        lambda v: VideoListDataset(v.root / "nope", v.root / "x.txt", sampler=SegmentSampler(2)),
        "nope",
    ),
    "mixup num_classes=1": (lambda v: make_mixup(num_classes=1), "num_classes=1"),
    "mixup alpha<0": (lambda v: make_mixup(num_classes=4, mixup_alpha=-0.1), "mixup_alpha=-0.1"),
    "mixup prob>1": (lambda v: make_mixup(num_classes=4, prob=1.5), "prob=1.5"),
    "mixup smoothing=1": (lambda v: make_mixup(num_classes=4, label_smoothing=1.0), "label_smoothing=1.0"),
    "mixup mode": (lambda v: make_mixup(num_classes=4, mode="sample"), "mode='sample'"),
    "mixup odd batch": (lambda v: make_mixup(num_classes=4)(torch.zeros(3, 3, 2, 8, 8), torch.zeros(3).long()), "even"),
    "loader batch_size=0": (lambda v: make_loader(_dataset(v), batch_size=0), "batch_size=0"),
    "loader num_workers<0": (lambda v: make_loader(_dataset(v), batch_size=1, num_workers=-1), "num_workers=-1"),
    "loader timeout<0": (lambda v: make_loader(_dataset(v), batch_size=1, timeout=-1), "timeout=-1"),
    "loader prefetch_factor=0": (lambda v: make_loader(_dataset(v), batch_size=1, prefetch_factor=0), "prefetch"),
    "reader short_side=0": (lambda v: VideoReader(v.index, short_side=0), "short_side=0"),
    "reader width only": (lambda v: VideoReader(v.index, width=32), "both width and height"),
}


@pytest.mark.parametrize("case", list(BAD_OPTIONS))
def test_bad_option_is_a_one_line_data_config_error(videos, case):
    build, named = BAD_OPTIONS[case]
    with pytest.raises(DataConfigError) as info:
        build(videos)
    message = str(info.value)
    assert named in message and "\n" not in message
    assert isinstance(info.value, ValueError)


def test_good_options_build(videos):
    """Negative control: the boundary values are accepted."""
    DenseSampler(8, frame_interval=0.5, target_fps=30)
    SegmentSampler(1)
    _train(scale=(1.0, 1.0), ratio=(1.0, 1.0))
    _eval(resize=16)
    make_loader(_dataset(videos), batch_size=1, drop_last=True)
    make_mixup(num_classes=2, mixup_alpha=0.0, cutmix_alpha=0.0, prob=0.0, label_smoothing=0.0)
    _dataset(videos, sampler=SegmentSampler(2, num_clips=2), transform=[_eval(), _train()], multi_view=True)


@pytest.mark.parametrize("error", [DataConfigError, AnnotationError])
def test_cli_prints_data_errors_as_one_line(monkeypatch, capsys, error):
    """The CLI maps DataConfigError (and so AnnotationError) to one line on stderr and exit status 2."""
    import vitzoo.cli.main as cli

    def fails(args):
        raise error("train_transform: scale=[2.0, 1.0] (crop area); use (min, max) with 0 < min <= max <= 1")

    monkeypatch.setattr(cli, "cmd_models", fails)  # the parser is built inside main(), after this
    assert cli.main(["models"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "vitzoo models: error: train_transform: scale=[2.0, 1.0]" in err
