"""The self-supervised demo's parts, and the whole demo at a tiny size (nano model, 8 videos, one epoch each)."""

from __future__ import annotations

import json

import pytest
import yaml

import vitzoo
from vitzoo.demo.ssl import Clock, FinetuneResult, FrozenResult, finetune_table, frozen_table, labelled_subset, main


def test_labelled_subset_is_class_balanced_and_fixed(tmp_path):
    lines = [f"train/{i:06d}.mp4 {i % 4}" for i in range(40)]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    chosen = labelled_subset(tmp_path, 0.2).read_text().splitlines()
    assert len(chosen) == 8 and sorted(int(line.split()[1]) for line in chosen) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert set(chosen) <= set(lines)
    assert labelled_subset(tmp_path, 0.2).read_text().splitlines() == chosen  # the same subset every time
    assert len(labelled_subset(tmp_path, 0.01).read_text().splitlines()) == 4  # at least one per class


def test_tables_and_clock():
    frozen = [FrozenResult("simclr (self-supervised)", 0.5, 0.8125, 0.9, 1.0)]
    assert "| simclr (self-supervised) | 50.0% | 81.2% (90.0%) |" in frozen_table(frozen)
    tuned = [FinetuneResult("scratch", s, t, 45, 1.0) for s, t in ((0, 0.25), (1, 0.5), (2, 0.75))]
    assert "| from scratch | 25.0 / 50.0 / 75.0 | 50.0% (25.0-75.0) | 45 |" in finetune_table(tuned)
    value, clock = Clock.measure(lambda: sum(i * i for i in range(10000)))
    assert value == 333283335000 and clock.wall_s > 0 and clock.cpu_s >= 0 and len(clock.load) == 2


@pytest.mark.slow
def test_demo_end_to_end_tiny(tmp_path, capsys):
    supervised = vitzoo.save(vitzoo.create("vivit_joint_nano_8x2", num_classes=4), tmp_path / "sup.safetensors")
    sets = ["train.batch_size=4", "train.num_workers=0", "train.progress=false", "train.plot=false",
            "data.frame_interval=1"]  # fmt: skip
    out = tmp_path / "demo"
    argv = ["--out", str(out), "--num-train", "8", "--num-val", "4", "--num-frames", "12",
            "--model", "vivit_joint_nano_8x2", "--pretrain-epochs", "1", "--finetune-epochs", "2",
            "--label-fraction", "0.5", "--seeds", "0", "1", "--supervised", str(supervised),
            *[a for s in sets for a in ("--set", s)]]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| vicreg (self-supervised) |" in printed and "| random initialisation |" in printed
    results = json.loads((out / "results.json").read_text())
    assert [r["encoder"] for r in results["frozen"]] == [
        "simclr (self-supervised)", "vicreg (self-supervised)", "videomae (self-supervised)", "random initialisation",
        "supervised (every label, shipped weights)",
    ]  # fmt: skip
    inits = [(r["init"], r["seed"]) for r in results["finetune"]]
    assert inits == [(i, s) for i in ("simclr", "vicreg", "videomae", "scratch") for s in (0, 1)]
    assert all(r["steps"] == 2 for r in results["finetune"])  # 4 labelled videos, batch 4, 2 epochs
    config = (out / "finetune" / "simclr_seed1" / "config.yaml").read_text()
    assert "runs/simclr/checkpoints/best.safetensors" in config and "seed: 1" in config
    assert "pretrained: null" in (out / "finetune" / "scratch_seed0" / "config.yaml").read_text()
    videomae = yaml.safe_load((out / "finetune" / "videomae_seed0" / "config.yaml").read_text())["model"]
    assert videomae["options"]["global_pool"] == "avg" and videomae["options"]["fc_norm"] is False  # as pre-trained
    assert len(list((out / "runs" / "videomae" / "eval").glob("step_*/reconstruction.png"))) == 1
    assert main(argv) == 0  # a second run reuses every finished run
    assert json.loads((out / "results.json").read_text())["finetune"] == results["finetune"]
