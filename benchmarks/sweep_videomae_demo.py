"""VideoMAE's recipe on the self-supervised demo's videos, swept: mask ratio, masking, pre-training length, lr.

Each variant pre-trains the demo's micro joint ViViT with ``configs/videomae_vivit_joint_micro_motion.yaml`` plus the
variant's overrides (``vitzoo pretrain``'s path), then measures what the demo measures for it: kNN and the linear
probe on frozen features, and fine-tuning with 10% of the labels for each seed at the demo's equal steps
(:mod:`vitzoo.demo.ssl`'s functions, the same videos, labelled subset and fine-tuning recipe). Finished runs in
``--out`` are reused: pointing ``--out`` at a finished demo's folder (``demo_ssl_out``) reuses its ``videomae`` run as
the ``default`` variant. Writes ``<out>/videomae_sweep.{md,json}``.

Run: ``python benchmarks/sweep_videomae_demo.py [--out demo_ssl_out] [--variants default ratio75 ...]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import vitzoo.ssl  # noqa: F401  (registers the self-supervised tasks)
from vitzoo.demo.run import make_data, train_once
from vitzoo.demo.ssl import (
    MODEL,
    finetune,
    frozen_evaluations,
    labelled_subset,
    recipe_model_options,
    ssl_recipe,
)
from vitzoo.train.recipe import load_run_config

log = logging.getLogger("sweep_videomae")
VARIANTS = {  # name -> overrides of the VideoMAE demo recipe (default: the recipe as shipped)
    "default": [],
    "ratio75": ["task.options.mask_ratio=0.75"],
    "ratio50": ["task.options.mask_ratio=0.5"],
    "random75": ["task.options.mask=random", "task.options.mask_ratio=0.75"],
    "epochs16": ["train.epochs=16", "train.eval_every=16"],
    "lr3e-3": ["train.lr=3.0e-3"],
    "lr3e-4": ["train.lr=3.0e-4"],
    "ratio75_epochs16": ["task.options.mask_ratio=0.75", "train.epochs=16", "train.eval_every=16"],
}


def run_variant(name: str, overrides: list[str], *, out: Path, seeds: list[int], extra: list[str]) -> dict:
    """Pre-train, evaluate frozen features and fine-tune for one variant; its record."""
    method = "videomae" if name == "default" else f"videomae_{name}"
    run_dir = out / "runs" / method
    sets = [f"model.name={MODEL}", f"data.root={out / 'data'}", f"output_dir={run_dir}", *overrides, *extra]
    recipe = load_run_config(ssl_recipe("videomae"), sets)
    record = train_once(recipe, run_dir / "done.json", what=f"pre-training {method}")  # its own wall time, reused too
    checkpoint = run_dir / "checkpoints" / "best.safetensors"
    (frozen,) = frozen_evaluations({method: (str(checkpoint), False)}, recipe)
    fine_sets = ["train.epochs=15", "train.eval_every=15", *extra]
    tuned = [
        finetune(method, checkpoint, seed=seed, out=out, model=MODEL, overrides=fine_sets,
                 model_options=recipe_model_options("videomae"))
        for seed in seeds
    ]  # fmt: skip
    return dict(variant=name, overrides=overrides, pretrain_s=record["seconds"], updates=record["steps"],
                frozen=asdict(frozen), finetune=[100 * t.top1 for t in tuned], steps=tuned[0].steps)  # fmt: skip


def table(records: list[dict]) -> str:
    """Markdown: one row per variant."""
    lines = [
        "| variant | overrides | pre-training: updates, s | kNN top-1 | probe top-1 | fine-tuning top-1 per seed "
        "| mean |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records:
        f = r["frozen"]
        lines.append(
            f"| {r['variant']} | {' '.join(r['overrides']) or '(the recipe)'} | "
            f"{r['updates']}, {r['pretrain_s']:.0f} | "
            f"{100 * f['knn_top1']:.1f}% | {100 * f['probe_top1']:.1f}% | "
            f"{' / '.join(f'{t:.1f}' for t in r['finetune'])} | {statistics.mean(r['finetune']):.1f}% |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo_ssl_out"))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=sorted(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    make_data(args.out / "data", num_train=480, num_val=160, shape="disk", distractors=0, num_frames=48)
    labelled_subset(args.out / "data", 0.1)
    started, records = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), []
    for name in args.variants:
        records.append(run_variant(name, VARIANTS[name], out=args.out, seeds=args.seeds, extra=args.extra))
        report = f"VideoMAE recipe sweep on the SSL demo's videos (started {started}):\n\n{table(records)}\n"
        (args.out / "videomae_sweep.md").write_text(report)
        (args.out / "videomae_sweep.json").write_text(json.dumps(records, indent=1) + "\n")
    print(report)  # noqa: T201 (a benchmark script's report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
