"""The demo's parts: synthetic shapes, the weights manifest, and a tiny end-to-end run (slow)."""

from __future__ import annotations

import json

import pytest
import torch

import vitzoo
from vitzoo.checkpoints.io import weights_dir
from vitzoo.demo import manifest
from vitzoo.demo.run import RunResult, results_table
from vitzoo.demo.shapes import NUM_CLASSES, make_shape_images


def test_shape_images_label_encodes_quadrant():
    images, labels = make_shape_images(64, size=32, seed=3)
    assert images.shape == (64, 3, 32, 32) and labels.max() < NUM_CLASSES
    for img, label in zip(images, labels, strict=True):
        bright = img.mean(0) > 0.5  # the shape is bright, the background dark
        ys, xs = torch.nonzero(bright, as_tuple=True)
        quadrant = int(ys.float().mean() >= 16) * 2 + int(xs.float().mean() >= 16)
        assert quadrant == int(label) % 4
    again, _ = make_shape_images(64, size=32, seed=3)
    assert torch.equal(images, again)


def test_manifest_records_hash_and_preprocessing(tmp_path):
    path = vitzoo.save(vitzoo.create("vit_nano_patch8_32", num_classes=3), tmp_path / "w.safetensors")
    entry = manifest.record(path, recipe={"epochs": 1}, metrics={"val_top1": 0.5}, reproduce="cmd")
    assert entry["sha256"] == manifest.sha256(path) and entry["architecture"] == "vit_nano_patch8_32"
    assert entry["preprocessing"]["img_size"] == 32 and entry["preprocessing"]["mean"] == [0.5, 0.5, 0.5]
    assert manifest.verify(tmp_path) == []
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    assert manifest.verify(tmp_path) == ["w"]


def test_shipped_weights_match_their_manifest():
    folder = weights_dir()
    if not (folder / "manifest.json").is_file():
        pytest.skip("no weights shipped in this checkout")
    assert manifest.verify(folder) == []
    for name, entry in json.loads((folder / "manifest.json").read_text()).items():
        model = vitzoo.load(folder / entry["file"])
        assert model.arch_name == entry["architecture"], name


@pytest.mark.parametrize(
    "name", ["vivit_joint_micro_4x2_motion", "mvitv2_micro_8x2_motion", "vit_micro_patch4_32_shapes"]
)
def test_recording_a_shipped_file_again_gives_its_manifest_entry(tmp_path, name):
    """What ``make demo ARGS=--ship`` writes: class names and evaluation sampling come from the file's metadata."""
    import shutil

    entry = json.loads((weights_dir() / "manifest.json").read_text())[name]
    copy = tmp_path / entry["file"]
    shutil.copy(weights_dir() / entry["file"], copy)
    recipe = {k: v for k, v in entry["recipe"].items() if k != "eval"}
    again = manifest.record(copy, recipe=recipe, metrics=entry["metrics"], reproduce=entry["reproduce"])
    assert again == entry
    assert ("labels" in again) == name.endswith("_motion")  # the motion models carry left, right, up, down


def test_results_table_formats_percentages():
    row = RunResult("joint", "m", "scratch", 0.9375, 1.0, 6, 120, 33.2, "w")
    assert "| joint | scratch | 93.8% | 100.0% | 6 | 120 | 33 s |" in results_table([row])


@pytest.mark.slow
def test_demo_end_to_end_tiny(tmp_path, monkeypatch):
    from vitzoo.demo import main

    shipped = tmp_path / "weights"
    vitzoo.save(
        vitzoo.create("vit_micro_patch4_32", num_classes=NUM_CLASSES),
        shipped / "vit_micro_patch4_32_shapes.safetensors",
    )
    vitzoo.save(
        vitzoo.create("vit_micro_patch4_32", num_classes=NUM_CLASSES, class_token=False, global_pool="avg"),
        shipped / "vit_micro_patch4_32_shapes_avgpool.safetensors",
    )
    vitzoo.save(
        vitzoo.create("swin_micro_patch4_window4_32", num_classes=NUM_CLASSES),
        shipped / "swin_micro_patch4_window4_32_shapes.safetensors",
    )
    monkeypatch.setenv("VITZOO_WEIGHTS_DIR", str(shipped))
    out = tmp_path / "demo"
    status = main(["--out", str(out), "--num-train", "16", "--num-val", "4", "--epochs", "1", "--seed", "3"])
    assert status in (0, 1)  # accuracy after one update on 16 videos is not the point here
    results = json.loads((out / "results.json").read_text())
    assert len(results["runs"]) == 12 and results["export"]["onnx_max_abs_diff"] <= 1e-4
    assert (out / "results.png").is_file() and (out / "export" / "vivit_fact_enc_micro_motion.onnx").is_file()
    assert (out / "init_vs_scratch.png").is_file()
    assert "| factorised encoder (Model 2) | scratch | " in (out / "results.md").read_text()
    assert "| MViTv2 micro (multiscale) | scratch | " in (out / "results.md").read_text()
    assert "seed: 3" in (out / "runs" / "vivit_joint_micro_4x2_scratch" / "config.yaml").read_text()
    # each encoder starts from the shipped ViT with its readout: class token (Models 1, 2) or mean (3, 4)
    assert (
        "pretrained: vit_micro_patch4_32_shapes_avgpool"
        in (out / "runs/vivit_fact_sa_micro_4x2_vit/config.yaml").read_text()
    )
    assert (
        "pretrained: vit_micro_patch4_32_shapes\n" in (out / "runs/vivit_joint_micro_4x2_vit/config.yaml").read_text()
    )
    swin_recipe = (out / "runs/video_swin_micro_4x2_image_swin/config.yaml").read_text()
    assert "pretrained: swin_micro_patch4_window4_32_shapes\n" in swin_recipe and "tubelet_init: average" in swin_recipe
    assert "| Video Swin | image Swin | " in (out / "results.md").read_text()


def test_init_comparison_table_reads_equal_step_windows(tmp_path):
    from vitzoo.demo.curves import comparison_table, window_loss
    from vitzoo.train.metrics import MetricsLogger

    runs = {}
    for init, loss in (("vit", 0.5), ("scratch", 1.5)):
        runs[init] = tmp_path / init
        logger = MetricsLogger(runs[init])
        for step in range(5, 41, 5):
            logger.log({"kind": "train", "step": step, "loss": loss if step <= 20 else loss / 5})
        logger.log({"kind": "val", "step": 20, "top1": 0.75 if init == "vit" else 0.25})
    records = [{"kind": "train", "step": s, "loss": float(s)} for s in (5, 10, 15)]
    assert window_loss(records, 5, 15) == 12.5 and window_loss(records, 15, 20) is None
    table = comparison_table([("joint", "ViT", runs["vit"], runs["scratch"])], steps=40, windows=2)
    assert "| model | init | loss 1-20 | loss 21-40 | held-out top-1 at step 20 / 40 |" in table
    assert "| joint | ViT | 0.50 | 0.10 | 75.0% / – |" in table
    assert "| joint | scratch | 1.50 | 0.30 | 25.0% / – |" in table
