"""``python -m vitzoo.demo.ssl`` (or ``make demo ARGS=--ssl``): self-supervised pre-training, measured, on 2 CPU cores.

1. Write the motion videos (a disk moving left, right, up or down on a torus; :func:`vitzoo.data.make_motion_dataset`)
   at 48 frames, so that two clips of one video can be far apart in time and share the motion but not the disk's
   position. Pre-training reads no labels; only the evaluations do.
2. Pre-train the micro ViViT (``vivit_joint_micro_4x2`` by default) WITHOUT labels with SimCLR, VICReg (a method
   without negatives) and VideoMAE (masked autoencoding) through their recipes
   (``configs/<method>_vivit_joint_micro_motion.yaml``, the path of ``vitzoo pretrain``).
3. Evaluate frozen features, kNN (k = 20) and a linear probe on the 480 training / 160 held-out videos, for each
   self-supervised encoder, the same encoder at random initialisation, and the supervised one (the fine-tuned
   weights shipped in ``weights/``, trained with every label).
4. Fine-tune with 10% of the labels (a class-balanced subset of the training list) from each self-supervised
   checkpoint and from scratch, at equal steps, for several training seeds, through the classification recipe
   ``configs/demo_motion_micro.yaml`` (``model.pretrained: <run>/checkpoints/best.safetensors``, with the
   ``model.options`` of the method's recipe, e.g. VideoMAE's mean pooling), ``--jobs`` runs at a time.
5. Print and write ``results.md`` / ``results.json``, with wall and CPU times and the load average: the machine
   may be shared, which inflates wall times.

Finished runs in ``--out`` are reused, so an interrupted demo continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import vitzoo.ssl  # noqa: F401  (registers the self-supervised tasks the recipes name)
from vitzoo.demo.cpus import run_jobs, torch_threads, usable_cpus
from vitzoo.demo.run import configs_dir, make_data, train_once
from vitzoo.errors import InputNotFoundError
from vitzoo.train.config import RunConfig
from vitzoo.train.recipe import load_run_config

log = logging.getLogger(__name__)

MODEL = "vivit_joint_micro_4x2"
METHODS = ("simclr", "vicreg", "videomae")
SUPERVISED = "vivit_joint_micro_4x2_motion"  # weights/ name: fine-tuned with every label (make demo ARGS=--ship)
FINETUNE_RECIPE = "demo_motion_micro.yaml"
LABELLED_LIST = "train_labelled.txt"


def ssl_recipe(method: str) -> Path:
    """The demo's recipe of ``method`` (``configs/<method>_vivit_joint_micro_motion.yaml``); an error naming the
    recipes that exist when there is none."""
    path = configs_dir() / f"{method}_vivit_joint_micro_motion.yaml"
    if not path.is_file():
        known = sorted(p.name.split("_")[0] for p in configs_dir().glob("*_vivit_joint_micro_motion.yaml"))
        raise InputNotFoundError(f"no recipe {path} for method {method!r}; the demo has recipes for {known}")
    return path


@dataclass
class Clock:
    """Wall time, CPU time (this process and its finished children: DataLoader workers) and load averages of a
    phase of the demo."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    load: list[float] = field(default_factory=list)  # 1-minute load average at the start and the end

    @classmethod
    def measure(cls, fn: Callable[[], Any]) -> tuple[Any, Clock]:
        """Run ``fn`` and return its result and the clock of that run."""

        def cpu() -> float:
            own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
            return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

        load, wall, used = os.getloadavg()[0], time.perf_counter(), cpu()
        result = fn()
        return result, cls(time.perf_counter() - wall, cpu() - used, [load, os.getloadavg()[0]])


def labelled_subset(root: Path, fraction: float, *, seed: int = 0) -> Path:
    """Write ``root/train_labelled.txt``: ``fraction`` of each class of ``root/train.txt`` (at least one video per
    class), drawn once from ``seed``; returns its path."""
    import random

    lines = [line for line in (root / "train.txt").read_text().splitlines() if line.strip()]
    by_class: dict[str, list[str]] = {}
    for line in lines:
        by_class.setdefault(line.rsplit(maxsplit=1)[1], []).append(line)
    rng = random.Random(seed)
    chosen = []
    for label in sorted(by_class):
        group = by_class[label]
        chosen += rng.sample(group, max(1, round(fraction * len(group))))
    path = root / LABELLED_LIST
    path.write_text("".join(f"{line}\n" for line in sorted(chosen)))
    return path


def pretrain(method: str, *, out: Path, model: str, overrides: Sequence[str]) -> tuple[Path, Clock]:
    """Pre-train ``model`` with ``method``'s recipe (resumed or reused when ``out`` already holds the run), with
    as many torch threads as the recipe's loader workers leave CPUs; returns the best checkpoint (highest kNN
    top-1 at validation) and the clock of this call."""
    run_dir = out / "runs" / method
    sets = [f"model.name={model}", f"data.root={out / 'data'}", f"output_dir={run_dir}", *overrides]
    recipe = load_run_config(ssl_recipe(method), sets)
    threads = max(1, usable_cpus() - recipe.train.num_workers)  # the loader workers keep their cores (cpus.py)
    with torch_threads(threads):
        _, clock = Clock.measure(lambda: train_once(recipe, run_dir / "done.json", what=f"pre-training {method}"))
    return run_dir / "checkpoints" / "best.safetensors", clock


@dataclass
class FrozenResult:
    """kNN and linear-probe top-1 of one encoder's frozen features."""

    encoder: str
    knn_top1: float
    probe_top1: float
    probe_train_top1: float
    seconds: float


def frozen_evaluations(
    encoders: dict[str, tuple[str | None, bool]], run: RunConfig, *, k: int = 20, probe_epochs: int = 100
) -> list[FrozenResult]:
    """kNN (``k`` neighbours, T = 0.07) and linear-probe top-1 of every encoder: ``label -> (checkpoint, random)``."""
    from vitzoo.ssl.evaluate import encoder, frozen_features, knn, probe

    results = []
    for label, (checkpoint, random_init) in encoders.items():
        start = time.perf_counter()
        model = encoder(run, checkpoint=checkpoint, random_init=random_init)
        features = frozen_features(run, model)
        nearest, linear = knn(features, k=k), probe(features, epochs=probe_epochs)
        results.append(FrozenResult(label, nearest.top1, linear.top1, linear.train_top1, time.perf_counter() - start))
        log.info("%s: kNN %.1f%%, linear probe %.1f%%", label, 100 * nearest.top1, 100 * linear.top1)
    return results


@dataclass
class FinetuneResult:
    """Held-out top-1 (single view) after fine-tuning on the labelled subset from one initialisation and seed."""

    init: str  # a method's name (from its self-supervised checkpoint) or "scratch"
    seed: int
    top1: float
    steps: int
    seconds: float


def recipe_model_options(method: str) -> list[str]:
    """``--set`` overrides of the ``model.options`` in ``method``'s recipe (fine-tuning builds the architecture that
    was pre-trained, e.g. VideoMAE's mean pooling)."""
    options = load_run_config(ssl_recipe(method)).model.options
    return [f"model.options.{key}={json.dumps(value)}" for key, value in options.items()]


def finetune(
    init: str,
    checkpoint: Path | None,
    *,
    seed: int,
    out: Path,
    model: str,
    overrides: Sequence[str],
    model_options: Sequence[str] = (),
) -> FinetuneResult:
    """Fine-tune ``model`` (with ``model_options`` overrides) from ``checkpoint`` (None: scratch) on the labelled
    subset, in ``out/finetune/<init>_seed<seed>``; reuse a finished run."""
    run_dir = out / "finetune" / f"{init}_seed{seed}"
    sets = [
        f"model.name={model}", *model_options, f"model.pretrained={checkpoint or 'null'}",
        f"data.root={out / 'data'}", f"data.train={LABELLED_LIST}", "data.eval_clips=1", "data.eval_crops=1",
        f"train.seed={seed}", f"output_dir={run_dir}", *overrides,
    ]  # fmt: skip
    recipe = load_run_config(configs_dir() / FINETUNE_RECIPE, sets)
    record = train_once(recipe, run_dir / "done.json", what=f"fine-tuning {run_dir.name}")
    return FinetuneResult(init, seed, record["best_value"], record["steps"], record["seconds"])


def frozen_table(results: list[FrozenResult]) -> str:
    """Markdown: kNN and linear-probe top-1 per encoder."""
    lines = ["| encoder | kNN top-1 (k=20) | linear probe top-1 (train) |", "|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r.encoder} | {100 * r.knn_top1:.1f}% | {100 * r.probe_top1:.1f}% ({100 * r.probe_train_top1:.1f}%) |"
        )
    return "\n".join(lines)


def finetune_table(results: list[FinetuneResult]) -> str:
    """Markdown: per initialisation, held-out top-1 of every seed and their mean (min-max)."""
    by_init: dict[str, list[FinetuneResult]] = {}
    for r in results:
        by_init.setdefault(r.init, []).append(r)
    lines = ["| initialisation | held-out top-1 per seed | mean (min-max) | steps |", "|---|---|---|---|"]
    for init, runs in by_init.items():
        tops = [100 * r.top1 for r in runs]
        seeds = " / ".join(f"{t:.1f}" for t in tops)
        spread = f"{statistics.mean(tops):.1f}% ({min(tops):.1f}-{max(tops):.1f})"
        lines.append(f"| from {init} | {seeds} | {spread} | {runs[0].steps} |")
    return "\n".join(lines)


def clock_line(name: str, clock: Clock) -> str:
    """One line: wall and CPU seconds of a phase and the load average around it."""
    load = " -> ".join(f"{v:.1f}" for v in clock.load) or "-"
    return f"{name}: {clock.wall_s:.0f} s wall, {clock.cpu_s:.0f} s CPU, 1-min load average {load}"


def main(argv: list[str] | None = None) -> int:
    """Run the self-supervised demo; returns 0."""
    parser = argparse.ArgumentParser(prog="python -m vitzoo.demo.ssl", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo_ssl_out"), help="output folder (reused if present)")
    parser.add_argument("--num-train", type=int, default=480, help="training videos (labels unused in pre-training)")
    parser.add_argument("--num-val", type=int, default=160, help="held-out videos")
    parser.add_argument("--num-frames", type=int, default=48, help="frames per video")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), help="self-supervised methods to pre-train")
    parser.add_argument("--model", default=MODEL, help="the video encoder (its recipes' model.name)")
    parser.add_argument("--pretrain-epochs", type=int, default=None, help="override the recipes' train.epochs")
    parser.add_argument("--label-fraction", type=float, default=0.1, help="labelled share of the training videos")
    parser.add_argument("--finetune-epochs", type=int, default=15, help="fine-tuning epochs on the labelled subset")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="fine-tuning seeds")
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, usable_cpus()),
        help="fine-tuning runs at once, each in its own process (default: 2; see vitzoo/demo/cpus.py)",
    )
    parser.add_argument("--supervised", default=SUPERVISED, help="supervised weights (weights/ name or file)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="extra override for every recipe, e.g. train.num_workers=0")  # fmt: skip
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: use 1 or more (1: one fine-tuning run after the other, in this process)")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out: Path = args.out
    started = time.perf_counter()

    dataset, data_clock = Clock.measure(
        lambda: make_data(
            out / "data",
            num_train=args.num_train,
            num_val=args.num_val,
            shape="disk",
            distractors=0,
            num_frames=args.num_frames,
        )  # fmt: skip
    )
    labelled = labelled_subset(out / "data", args.label_fraction)
    overrides = list(args.overrides)
    pre_sets = overrides + ([] if args.pretrain_epochs is None else [f"train.epochs={args.pretrain_epochs}"])
    checkpoints, clocks = {}, {"data": data_clock}
    for method in args.methods:  # one at a time: two side by side ran 3x slower each (busy loader workers, cpus.py)
        checkpoints[method], clocks[f"pre-training {method}"] = pretrain(
            method, out=out, model=args.model, overrides=pre_sets
        )

    from vitzoo.checkpoints.io import resolve_weights

    eval_run = load_run_config(
        ssl_recipe(args.methods[0]), [f"model.name={args.model}", f"data.root={out / 'data'}", *overrides]
    )
    encoders: dict[str, tuple[str | None, bool]] = {
        f"{method} (self-supervised)": (str(path), False) for method, path in checkpoints.items()
    }
    encoders["random initialisation"] = (None, True)
    encoders["supervised (every label, shipped weights)"] = (str(resolve_weights(args.supervised)), False)
    frozen, clocks["frozen-feature evaluation"] = Clock.measure(lambda: frozen_evaluations(encoders, eval_run))

    # one validation, after the last update: no best step is chosen on the held-out videos
    fine_sets = [f"train.epochs={args.finetune_epochs}", f"train.eval_every={args.finetune_epochs}", *overrides]
    inits: dict[str, Path | None] = {**checkpoints, "scratch": None}

    jobs = [
        (f"{init}_seed{seed}", finetune, dict(
            init=init, checkpoint=path, seed=seed, out=out, model=args.model, overrides=fine_sets,
            model_options=recipe_model_options(init) if path is not None else (),
        ))
        for init, path in inits.items()
        for seed in args.seeds
    ]  # fmt: skip
    tuned, clocks[f"fine-tuning, {args.jobs} at a time"] = Clock.measure(
        lambda: run_jobs(jobs, processes=args.jobs, desc="fine-tuning")
    )

    num_labelled = len(labelled.read_text().splitlines())
    tables = (
        f"Frozen features ({dataset['num_train']} training videos as kNN memory / probe training set, "
        f"{dataset['num_val']} held-out queries; chance 25%):\n\n{frozen_table(frozen)}\n\n"
        f"Fine-tuning on {num_labelled} labelled videos ({100 * args.label_fraction:.0f}%), equal steps, held-out "
        f"top-1 (single view):\n\n{finetune_table(tuned)}\n"
    )
    timing = "\n".join(clock_line(name, clock) for name, clock in clocks.items())
    total = f"total: {time.perf_counter() - started:.0f} s wall ({os.cpu_count()} CPUs visible)"
    (out / "results.md").write_text(f"{tables}\n{timing}\n{total}\n")
    record = {
        "dataset": dataset, "labelled": num_labelled, "frozen": [asdict(r) for r in frozen],
        "finetune": [asdict(r) for r in tuned], "clocks": {k: asdict(v) for k, v in clocks.items()},
    }  # fmt: skip
    (out / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"\n{tables}\n{timing}\n{total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
