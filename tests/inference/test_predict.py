"""``vitzoo.predict`` on the shipped motion weights: fresh clips, a stitched long video, bad files, and the
probabilities ``vitzoo eval`` computes for the same clip."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

import vitzoo
from tests.helpers import REPO_ROOT
from tests.helpers.motion_videos import DIRECTIONS, FPS, MOTION_WEIGHTS, write_direction_clips, write_stitched_video
from vitzoo.data.video import VideoReader
from vitzoo.inference import PredictStats, open_model
from vitzoo.schema import ConfigError

STITCHED = ("left", "up", "right", "down")
FRAMES_EACH = 48


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return write_direction_clips(tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="module")
def stitched(tmp_path_factory):
    return write_stitched_video(tmp_path_factory.mktemp("long") / "long.mp4", STITCHED, frames_each=FRAMES_EACH)


def test_the_shipped_motion_model_names_the_direction_of_fresh_clips(clips):
    records = vitzoo.predict(MOTION_WEIGHTS, sorted(clips), topk=2, progress=False)
    assert [r.path for r in records] == [str(p) for p in sorted(clips)]
    for record, path in zip(records, sorted(clips), strict=True):
        assert record.error is None and len(record.topk) == 2
        assert record.topk[0].label == clips[path] == DIRECTIONS[record.topk[0].index]
        assert record.topk[0].prob > 0.5 and record.topk[0].prob >= record.topk[1].prob
        (window,) = record.windows  # a clip is one window: the evaluation views (2 clips x 3 crops)
        assert window.start == 0 and window.end == pytest.approx(16 / FPS)
        assert [(s.label, s.start, s.end) for s in record.segments] == [(clips[path], window.start, window.end)]


def test_a_stitched_long_video_gets_windows_and_segments_that_follow_its_timeline(stitched, monkeypatch):
    requests = []
    original = VideoReader.get

    def counting_get(self, indices, **kwargs):
        requests.append(list(indices))
        return original(self, indices, **kwargs)

    monkeypatch.setattr(VideoReader, "get", counting_get)
    stats = PredictStats()
    (record,) = vitzoo.predict(MOTION_WEIGHTS, stitched, progress=False, stats=stats, batch_size=4)
    seconds_each = FRAMES_EACH / FPS
    window_s = 15 / FPS  # 8 frames, 2 apart
    assert [s.label for s in record.segments] == list(STITCHED)
    for i, segment in enumerate(record.segments[1:], start=1):  # boundaries within half a window of the truth
        assert abs(segment.start - i * seconds_each) <= window_s / 2
    assert record.segments[0].start == 0 and record.segments[-1].end == pytest.approx(len(STITCHED) * seconds_each)
    for window in record.windows:  # a window inside one stitched part names that part's direction
        first, last = int(window.start // seconds_each), int((window.end - 1e-6) // seconds_each)
        if first == last:
            assert window.topk[0].label == STITCHED[first], window
    starts = [w.start for w in record.windows]
    assert starts[:3] == pytest.approx([0, 8 / FPS, 16 / FPS])  # stride: half a window (15 / 2 -> 8 frames)
    assert starts[-1] == pytest.approx((FRAMES_EACH * len(STITCHED) - 15) / FPS)  # the last window ends the video
    assert stats.windows == len(record.windows) == 24 and 0 < stats.decode_s < stats.total_s
    expected = np.mean([[p.prob for p in sorted(w.topk, key=lambda p: p.index)] for w in record.windows], axis=0)
    assert [p.prob for p in sorted(record.topk, key=lambda p: p.index)] == pytest.approx(expected, abs=1e-5)
    decoded = [i for request in requests for i in request]
    assert len(decoded) == len(set(decoded))  # frames are decoded once, not once per window
    assert len(requests) == 6 and max(len(r) for r in requests) <= 3 * 8 + 15  # a batch of 4 windows at a time


@pytest.mark.slow
def test_probabilities_equal_those_vitzoo_eval_computes_for_the_clip(tmp_path):
    """One validation video, evaluated by ``vitzoo eval`` once per class as its label: the loss is -log p(label)."""
    from vitzoo.data import make_motion_dataset
    from vitzoo.train.recipe import evaluate_from_config, load_run_config

    data = make_motion_dataset(tmp_path / "data", num_train=2, num_val=1, seed=5, progress=False)
    video = tmp_path / "data" / data.val_list.read_text().split()[0]
    eval_probs = []
    for k in range(len(DIRECTIONS)):
        (tmp_path / "data" / f"val_{k}.txt").write_text(f"{video.relative_to(tmp_path / 'data')} {k}\n")
        overrides = [f"data.root={tmp_path / 'data'}", f"data.val=val_{k}.txt", f"output_dir={tmp_path / 'run'}",
                     "model.name=vivit_joint_micro_4x2", "train.progress=false", "train.num_workers=0"]  # fmt: skip
        run = load_run_config(REPO_ROOT / "configs" / "demo_motion_micro.yaml", overrides)
        result = evaluate_from_config(run, checkpoint=MOTION_WEIGHTS, out_dir=tmp_path / f"eval_{k}")
        assert result.num_views == 6  # the recipe's 2 clips x 3 crops, which the weights record
        eval_probs.append(math.exp(-result.loss))
    (record,) = vitzoo.predict(MOTION_WEIGHTS, video, topk=4, progress=False)
    probs = [p.prob for p in sorted(record.topk, key=lambda p: p.index)]
    assert probs == pytest.approx(eval_probs, rel=1e-5, abs=1e-7)


def test_an_unreadable_or_empty_file_gets_an_error_and_the_others_go_on(clips, tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    (tmp_path / "empty.mp4").write_bytes(b"")
    good = sorted(clips)[0]
    records = vitzoo.predict(MOTION_WEIGHTS, [tmp_path / "broken.mp4", good, tmp_path / "empty.mp4"], progress=False)
    broken, ok, empty = records
    assert "broken.mp4" in broken.error and "\n" not in broken.error and broken.topk == []
    assert "empty file" in empty.error
    assert ok.error is None and ok.topk[0].label == clips[good]
    assert "error" not in ok.to_dict() and broken.to_dict()["error"] == broken.error


def test_an_image_for_a_video_model_is_an_input_error(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    (record,) = vitzoo.predict(MOTION_WEIGHTS, tmp_path / "x.png", progress=False)
    assert record.error == "an image input for a video model"


def test_labels_override_and_a_model_without_names_gets_indices_with_one_warning(clips, caplog):
    path = sorted(clips)[0]
    (named,) = vitzoo.predict(MOTION_WEIGHTS, path, labels=["W", "E", "N", "S"], progress=False)
    assert named.topk[0].label == {"left": "W", "right": "E", "up": "N", "down": "S"}[clips[path]]
    model = vitzoo.load(MOTION_WEIGHTS)  # a model object carries no names
    with caplog.at_level(logging.WARNING, logger="vitzoo.inference"):
        (plain,) = vitzoo.predict(model, [path, path], progress=False)[:1]
    assert plain.topk[0].label == str(DIRECTIONS.index(clips[path]))
    assert sum("records no class names" in r.message for r in caplog.records) == 1
    with pytest.raises(ConfigError, match="3 class names for a model with 4 classes"):
        open_model(MOTION_WEIGHTS, labels=["a", "b", "c"])


@pytest.mark.parametrize(("option", "message"), [({"topk": 0}, "topk must be >= 1"), ({"stride": 0}, "stride")])
def test_bad_options_are_refused_before_anything_is_read(option, message, clips):
    with pytest.raises(ConfigError, match=message):
        vitzoo.predict(MOTION_WEIGHTS, sorted(clips), **option)


def test_an_image_model_predicts_images_and_refuses_videos(clips, tmp_path):
    from PIL import Image

    from vitzoo.demo.shapes import make_shape_images

    images, labels = make_shape_images(2, seed=3)  # (N, 3, 32, 32) in [0, 1], 16 classes (shape x quadrant)
    for i, image in enumerate(images):
        pixels = (image * 255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()  # (H, W, 3)
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
    weights = REPO_ROOT / "weights" / "vit_micro_patch4_32_shapes.safetensors"
    records = vitzoo.predict(weights, [tmp_path / "0.png", tmp_path / "1.png", sorted(clips)[0]], progress=False)
    assert [r.topk[0].index for r in records[:2]] == labels.tolist()
    assert records[2].error == "a video input for an image model"


def test_clips_are_scored_batch_size_at_a_time_with_the_same_probabilities(clips):
    model = vitzoo.load(MOTION_WEIGHTS)  # a model object records no sampling: the demo recipe's views, given
    views = {"eval_clips": 2, "eval_crops": 3}
    passes = []
    model.register_forward_hook(lambda module, args, out: passes.append(args[0].shape[0]))
    paths = sorted(clips)
    batched = vitzoo.predict(model, paths, batch_size=3, topk=4, preprocess=views, progress=False)
    assert passes == [3 * 6, 1 * 6]  # 4 clips x 6 views: a pass of 3 clips, then the last one
    alone = vitzoo.predict(model, paths, batch_size=1, topk=4, preprocess=views, progress=False)
    for a, b in zip(batched, alone, strict=True):
        assert a.path == b.path and [p.index for p in a.topk] == [p.index for p in b.topk]
        assert [p.prob for p in a.topk] == pytest.approx([p.prob for p in b.topk], abs=1e-5)
