"""Token merging (ToMe): held-out top-1 against inference speed-up, per encoder that merges. Writes
benchmarks/results/merging.{json,md,png} (shown in docs/performance.md).

1. **Accuracy, training-free.** The demo's shipped supervised models (``weights/``): the joint ViViT and the
   factorised encoder on the moving-disk task (the demo's validation set, 160 videos x the 6 views the weights
   record), the image ViT on its shapes task (2000 held-out images), each with ``r`` tokens merged per block for
   several ``r`` (``r = 0``: no merging). The fraction merged is ``r * depth / tokens per sequence`` (a clip's
   256 tokens for the joint model, a frame's 64 for the factorised encoder's spatial stage and for Models 3 and 4,
   which merge the same positions in every frame, an image's 64).
2. **Accuracy after a short fine-tune with merging on**: from the shipped weights, ``--finetune-epochs`` epochs of
   the demo's recipe (lr ``--finetune-lr``) at the operating point ``--finetune-fraction``, then evaluated as in 1.
3. **Speed.** Batches of random inputs through each model at every ``r``, timed interleaved (each repetition runs
   every variant once) against the unmerged model in the same run, fp32, eager; at micro size (the shipped
   models, batch ``--batch``) and at base size (ViViT-B joint and factorised encoder, random weights, 8 and 16
   frames at 224 px, batch 1) at the same fractions of tokens merged. Timing holds ``/tmp/vz-bench.lock`` so no
   other benchmark of this project runs at the same time; the machine may still be shared with other work (the
   load average is recorded).

Run: ``python benchmarks/bench_merging.py [--out benchmarks/results] [--data /tmp/vz-merging-data] [--quick]``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import fcntl
import json
import logging
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

import vitzoo
from vitzoo.bench.machine import load_average
from vitzoo.bench.timing import paired_speedup, time_interleaved
from vitzoo.checkpoints.io import weights_dir
from vitzoo.data.recipe import build_datasets
from vitzoo.demo.pretrain import shape_dataset
from vitzoo.demo.run import RECIPE, configs_dir, make_data
from vitzoo.layers.token_merging import decreasing_schedule
from vitzoo.train import fit
from vitzoo.train.recipe import load_run_config

log = logging.getLogger("bench_merging")
LOCK = "/tmp/vz-bench.lock"
FRACTIONS = (0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875)
FRONT_LOADED = (0.75,)  # fractions also measured with a front-loaded schedule at micro size
VIDEO = {  # label -> (shipped weights, the model's tokens per merging sequence)
    "joint ViViT (Model 1)": ("vivit_joint_micro_4x2_motion", 256),
    "factorised encoder (Model 2)": ("vivit_fact_enc_micro_4x2_motion", 64),
    "factorised self-attention (Model 3)": ("vivit_fact_sa_micro_4x2_motion", 64),  # the same positions in every
    "factorised dot-product (Model 4)": ("vivit_fact_dot_micro_4x2_motion", 64),  # frame: 64 per frame
}
IMAGE = ("image ViT (shapes)", "vit_micro_patch4_32_shapes", 64)
BASE = {"joint ViViT (Model 1)": "vivit_joint_base_16x2", "factorised encoder (Model 2)": "vivit_fact_enc_base_16x2"}


@contextlib.contextmanager
def bench_lock():
    """Hold the project's benchmark lock (``flock /tmp/vz-bench.lock``) while timing."""
    with open(LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def r_for(fraction: float, tokens: int, depth: int) -> int:
    """Tokens merged per block so that ``fraction`` of ``tokens`` are merged over ``depth`` blocks."""
    return round(fraction * tokens / depth)


def front_loaded(fraction: float, tokens: int, depth: int) -> list[int]:
    """A per-block schedule merging as many tokens in all as ``r_for``'s constant one, front-loaded
    (:func:`vitzoo.layers.token_merging.decreasing_schedule`)."""
    return list(decreasing_schedule(r_for(fraction, tokens, depth) * depth, depth))


def schedule_for(fraction: float, tokens: int, depth: int, kind: str) -> int | list[int]:
    """``r`` for ``fraction`` merged: constant per block (ToMe's default) or ``"front"``-loaded."""
    return front_loaded(fraction, tokens, depth) if kind == "front" else r_for(fraction, tokens, depth)


def r_text(r: int | list[int]) -> str:
    """``r`` for a table: the int, or a per-block list's first and last entries."""
    return str(r) if isinstance(r, int) else f"{r[0]}..{r[-1]} (front-loaded)"


def with_merging(model: torch.nn.Module, r: int) -> torch.nn.Module:
    """A copy of ``model`` merging ``r`` tokens per block."""
    out = copy.deepcopy(model)
    out.set_token_merging(r)
    return out.eval()


# ----------------------------------------------------------------------------------------- data
def motion_recipe(arch: str, data: Path, out: Path):
    """The demo's recipe for ``arch`` on the dataset in ``data``."""
    sets = [f"model.name={arch}", "model.pretrained=null", f"data.root={data}", f"output_dir={out}"]
    return load_run_config(configs_dir() / RECIPE, sets)


def cached_views(dataset, limit: int | None, *, multi_view: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``limit`` (all for None) ``(views, label)`` samples decoded once: ``(N, V, ...)`` and ``(N,)``."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    samples = [dataset[i] for i in range(n)]
    views = torch.stack([torch.as_tensor(v) for v, _ in samples])
    return views if multi_view else views.unsqueeze(1), torch.tensor([int(label) for _, label in samples])


@torch.no_grad()
def top1(model: torch.nn.Module, views: torch.Tensor, labels: torch.Tensor, batch: int = 32) -> float:
    """Top-1 of the mean softmax over each sample's views."""
    model.eval()
    correct = 0
    for i in range(0, len(labels), batch):
        v = views[i : i + batch]  # (b, V, ...)
        probs = model(v.flatten(0, 1)).softmax(-1).unflatten(0, v.shape[:2]).mean(1)  # (b, classes)
        correct += int((probs.argmax(-1) == labels[i : i + batch]).sum())
    return correct / len(labels)


def finetune(model: torch.nn.Module, train_set, *, epochs: int, lr: float, batch: int, max_steps: int | None):
    """``model`` fine-tuned with its merging on (the demo recipe's optimiser settings)."""
    model = copy.deepcopy(model).train()
    with tempfile.TemporaryDirectory(prefix="vz-merging-ft-") as run_dir:
        fit(model, train_set, out_dir=run_dir, epochs=epochs, batch_size=batch, lr=lr, warmup_epochs=0,
            weight_decay=0.05, clip_grad=1.0, seed=0, max_steps=max_steps, progress=False, plot=False)  # fmt: skip
    return model.eval()


# ----------------------------------------------------------------------------------------- speed
def speedups(models: list[torch.nn.Module], x: torch.Tensor, *, target_s: float, max_reps: int) -> list[dict]:
    """Each model's seconds per batch and speed-up over ``models[0]`` (timed interleaved, under the lock)."""
    fns = [lambda m=m: m(x) for m in models]
    with torch.inference_mode():  # the caller holds the benchmark lock
        load = load_average()[0]
        timings = time_interleaved(fns, warmup=1, min_reps=3, max_reps=max_reps, target_s=target_s)
    rows = []
    for t in timings:
        s = paired_speedup(t, timings[0])
        rows.append(dict(seconds=t.median, speedup=s.median, low=s.ci_low, high=s.ci_high, load=load))
    return rows


def base_model(arch: str, frames: int) -> tuple[torch.nn.Module, int]:
    """ViViT-B ``arch`` (random weights, seed 0) at ``frames`` frames, 224 px, in eval mode, and its tokens per
    merging sequence (the clip's for the joint model, a frame's for the factorised encoder)."""
    torch.manual_seed(0)
    model = vitzoo.create(arch, num_frames=frames, num_classes=400).eval()
    t, h, w = model.cfg.grid_thw
    return model, t * h * w if model.cfg.encoder == "joint" else h * w


def base_speed(label: str, arch: str, frames: int, fractions, *, target_s: float, max_reps: int) -> list[dict]:
    """ViViT-B (random weights) at ``frames`` frames, 224 px: speed-up at each fraction merged."""
    model, tokens = base_model(arch, frames)
    plans = [(f, kind) for f in fractions for kind in (("constant", "front") if f > 0 else ("constant",))]
    rs = [schedule_for(f, tokens, model.cfg.depth, kind) for f, kind in plans]
    x = torch.randn(1, *model.input_shape)
    rows = speedups([with_merging(model, r) for r in rs], x, target_s=target_s, max_reps=max_reps)
    return [dict(model=label, size="base", frames=frames, tokens=tokens, fraction=f, schedule=kind, r=r, **row)
            for (f, kind), r, row in zip(plans, rs, rows, strict=True)]  # fmt: skip


def sdpa_mask_cost(shapes: dict[str, tuple[int, int, int, int]], *, target_s: float, max_reps: int) -> list[dict]:
    """``scaled_dot_product_attention`` with and without proportional attention's float mask ``(B, 1, 1, L)``:
    the kernel that runs (profiler) and the time ratio (mask / none), per ``(B, H, L, d)``."""
    from torch.profiler import profile

    rows = []
    for label, (b, h, length, d) in shapes.items():
        q, k, v = (torch.randn(b, h, length, d) for _ in range(3))
        mask = torch.rand(b, 1, 1, length).add(1).log()
        kernels = {}
        for name, m in (("none", None), ("mask", mask)):
            with torch.inference_mode(), profile() as prof:
                F.scaled_dot_product_attention(q, k, v, attn_mask=m)
            kernels[name] = sorted({e.name for e in prof.events() if e.name.startswith("aten::_scaled_dot")})
        fns = [
            partial(F.scaled_dot_product_attention, q, k, v),
            partial(F.scaled_dot_product_attention, q, k, v, attn_mask=mask),
        ]
        with torch.inference_mode():
            plain, masked = time_interleaved(
                fns, warmup=2, min_reps=min(5, max_reps), max_reps=max_reps, target_s=target_s
            )
        s = paired_speedup(masked, plain)
        rows.append(dict(shape=label, kernel_none=kernels["none"], kernel_mask=kernels["mask"], none_s=plain.median,
                         mask_s=masked.median, cost=1 / s.median))  # fmt: skip
    return rows


# ----------------------------------------------------------------------------------------- report
def write_report(results: dict, out: Path) -> None:
    """``merging.json``, ``merging.md`` and the plot ``merging.png`` in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    (out / "merging.json").write_text(json.dumps(results, indent=1))
    lines = [
        "# Token merging: accuracy against speed-up",
        "",
        f"`{results['command']}` on {results['date']}, {results['threads']} threads, torch {results['torch']}; "
        "fp32 eager inference, timings interleaved against the unmerged model under `/tmp/vz-bench.lock` on a "
        "machine shared with other work (1-min load average in the table). Speed-up: median of per-repetition "
        "ratios, 95% interval in brackets.",
        "",
        "## Micro models (the demo's shipped weights)",
        "",
        "| model | fraction merged | r / block | top-1 | top-1 after fine-tune | speed-up | load |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["micro"]:
        ft = row.get("top1_finetuned")
        speed = (
            "not measured" if "speedup" not in row else f"{row['speedup']:.2f}x ({row['low']:.2f}-{row['high']:.2f})"
        )
        lines.append(
            f"| {row['model']} | {row['fraction']:.1%} | {r_text(row['r'])} | {100 * row['top1']:.2f}% | "
            f"{'' if ft is None else f'{100 * ft:.2f}%'} | {speed} | {row.get('load', float('nan')):.1f} |"
        )
    lines += [
        "",
        "## Proportional attention off (micro, at the fine-tune operating point)",
        "",
        "| model | fraction merged | r / block | top-1 | speed-up over r = 0 |",
        "|---|---|---|---|---|",
    ]
    for row in results["prop_attn"]:
        lines.append(
            f"| {row['model']} | {row['fraction']:.1%} | {row['r']} | {100 * row['top1']:.1f}% | "
            f"{row['speedup']:.2f}x ({row['low']:.2f}-{row['high']:.2f}) |"
        )
    lines += [
        "",
        "## The float mask in scaled_dot_product_attention",
        "",
        "| (B, H, L, d) | kernel without mask | kernel with mask | s without | s with | time with / without |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["sdpa"]:
        lines.append(
            f"| {row['shape']} | {', '.join(row['kernel_none'])} | {', '.join(row['kernel_mask'])} | "
            f"{row['none_s']:.4f} | {row['mask_s']:.4f} | {row['cost']:.2f} |"
        )
    lines += ["", "## Base size (ViViT-B, random weights, 224 px, batch 1)", "",
              "| model | frames | tokens / sequence | fraction merged | r / block | s / clip | speed-up | load |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in results["base"]:
        lines.append(
            f"| {row['model']} | {row['frames']} | {row['tokens']} | {row['fraction']:.1%} | {r_text(row['r'])} | "
            f"{row['seconds']:.2f} | {row['speedup']:.2f}x ({row['low']:.2f}-{row['high']:.2f}) | {row['load']:.1f} |"
        )
    (out / "merging.md").write_text("\n".join(lines) + "\n")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    models = sorted({row["model"] for row in results["micro"]})
    timed = all("speedup" in r for r in results["micro"])  # without timings: top-1 against the fraction merged

    def xs(rows):
        return [r["speedup"] if timed else 100 * r["fraction"] for r in rows]

    def constant(rows):  # ToMe's constant r per block: the curves; front-loaded schedules: separate markers
        return [r for r in rows if r.get("schedule", "constant") == "constant"]

    def front(rows):
        return [r for r in rows if r.get("schedule") == "front"]

    for name in models:
        rows = [r for r in results["micro"] if r["model"] == name]
        (line,) = axes[0].plot(xs(constant(rows)), [100 * r["top1"] for r in constant(rows)], "o-", label=name)
        tuned = [r for r in rows if r.get("top1_finetuned") is not None]
        if tuned:
            axes[0].plot(xs(tuned), [100 * r["top1_finetuned"] for r in tuned], "*",
                         markersize=12, color=line.get_color(), label=f"{name}, fine-tuned with merging")  # fmt: skip
        if front(rows):
            axes[0].plot(xs(front(rows)), [100 * r["top1"] for r in front(rows)], "D", color=line.get_color(),
                         label=f"{name}, front-loaded r")  # fmt: skip
    axes[0].set(xlabel="inference speed-up over r = 0 (micro, CPU)" if timed else "tokens merged (%)",
                ylabel="held-out top-1 (%)", title="Training-free token merging")  # fmt: skip
    axes[0].legend(fontsize=7)
    runs = sorted({(r["model"], r["frames"]) for r in results["base"]})
    for (name, frames), marker in zip(runs, "osd^", strict=False):
        rows = [r for r in results["base"] if (r["model"], r["frames"]) == (name, frames)]
        (line,) = axes[1].plot([100 * r["fraction"] for r in constant(rows)], [r["speedup"] for r in constant(rows)],
                               marker + "-", label=f"{name}, {frames} frames")  # fmt: skip
        if front(rows):
            axes[1].plot([100 * r["fraction"] for r in front(rows)], [r["speedup"] for r in front(rows)],
                         marker, mfc="none", markersize=9, color=line.get_color(),
                         label=f"{name}, {frames} frames, front-loaded r")  # fmt: skip
    for name in models if timed else []:
        rows = constant([r for r in results["micro"] if r["model"] == name])
        axes[1].plot([100 * r["fraction"] for r in rows], [r["speedup"] for r in rows], "x--", label=f"{name}, micro")
    if not results["base"] and not timed:
        axes[1].text(0.5, 0.5, "speed not measured in this run", ha="center", transform=axes[1].transAxes)
    axes[1].axhline(1.5, color="grey", lw=0.8, ls=":")
    axes[1].set(xlabel="tokens merged (%)", ylabel="speed-up", title="Speed-up at base and micro size")
    if results["base"] or timed:
        axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "merging.png", dpi=110)


# ----------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "vz-merging-data")
    parser.add_argument("--batch", type=int, default=16, help="clips per timed batch at micro size")
    parser.add_argument("--finetune-fraction", type=float, default=0.5)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--finetune-lr", type=float, default=2e-4)
    parser.add_argument("--base-frames", type=int, nargs="*", default=[8, 16])
    parser.add_argument("--base-fractions", type=float, nargs="*", default=[0.0, 0.5])
    parser.add_argument("--target-s", type=float, default=10.0, help="timed seconds per comparison")
    parser.add_argument("--quick", action="store_true", help="few samples and repetitions (a smoke test)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    limit, max_reps = (16, 3) if args.quick else (None, 15)
    results = dict(command="python benchmarks/bench_merging.py" + (" --quick" if args.quick else ""),
                   date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), threads=torch.get_num_threads(),
                   torch=torch.__version__, micro=[], base=[], prop_attn=[], sdpa=[])  # fmt: skip

    args.out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((weights_dir() / "manifest.json").read_text())
    dataset = manifest[VIDEO["joint ViViT (Model 1)"][0]]["recipe"]["dataset"]
    make_data(args.data, num_train=dataset["num_train"], num_val=dataset["num_val"], shape=dataset["shape"],
              distractors=dataset["distractors"], num_frames=dataset["num_frames"])  # fmt: skip

    subjects = []  # (label, model, tokens, eval views, labels, train set, timing input)
    for label, (weights, tokens) in VIDEO.items():
        model = vitzoo.load(weights_dir() / f"{weights}.safetensors")
        recipe = motion_recipe(manifest[weights]["architecture"], args.data, args.out / "tmp")
        train_set, val_set = build_datasets(recipe.data, model)
        views, labels = cached_views(val_set, limit, multi_view=True)
        subjects.append((label, model, tokens, views, labels, train_set, torch.randn(args.batch, *model.input_shape)))
    label, weights, tokens = IMAGE
    model = vitzoo.load(weights_dir() / f"{weights}.safetensors")
    val = shape_dataset(manifest[weights]["recipe"]["num_val"], seed=2, mean=model.cfg.mean, std=model.cfg.std)
    views, labels = cached_views(val, limit, multi_view=False)
    train = shape_dataset(2000, seed=1, mean=model.cfg.mean, std=model.cfg.std)
    subjects.append((label, model, tokens, views, labels, train, torch.randn(4 * args.batch, *model.input_shape)))

    speed_runs = []  # accuracy and fine-tuning first (no lock), then every timing under one hold of the lock
    for label, model, tokens, views, labels, train_set, x in subjects:
        depth = model.cfg.depth
        plans = [(f, "constant") for f in FRACTIONS] + [(f, "front") for f in FRONT_LOADED]
        rs = [schedule_for(f, tokens, depth, kind) for f, kind in plans]
        variants = [with_merging(model, r) for r in rs]
        accuracies = [top1(m, views, labels) for m in variants]
        log.info("%s: r %s -> top-1 %s", label, rs, accuracies)
        r_ft = r_for(args.finetune_fraction, tokens, depth)
        no_prop = copy.deepcopy(variants[0])
        no_prop.set_token_merging(r_ft, prop_attn=False)
        no_prop_top1 = top1(no_prop, views, labels)
        tuned = finetune(with_merging(model, r_ft), train_set, epochs=args.finetune_epochs, lr=args.finetune_lr,
                         batch=16, max_steps=3 if args.quick else None)  # fmt: skip
        tuned_top1 = top1(tuned, views, labels)
        log.info("%s: fine-tuned with r=%d -> top-1 %.4f", label, r_ft, tuned_top1)
        rows = []
        for (f, kind), r, acc in zip(plans, rs, accuracies, strict=True):
            extra = {"top1_finetuned": tuned_top1} if r == r_ft else {}
            rows.append(dict(model=label, fraction=f, schedule=kind, r=r, tokens=tokens, top1=acc, **extra))
        prop_row = dict(model=label, fraction=args.finetune_fraction, r=r_ft, top1=no_prop_top1)
        speed_runs.append((rows, prop_row, [*variants, no_prop], x))
        (args.out / "merging_accuracy.json").write_text(json.dumps([r for run in speed_runs for r in run[0]], indent=1))

    shapes = {"micro joint (16, 4, 257, 16)": (16, 4, 257, 16), "micro frame (64, 4, 65, 16)": (64, 4, 65, 16),
              "base joint 8 frames (1, 12, 785, 64)": (1, 12, 785, 64),
              "base joint 16 frames (1, 12, 1569, 64)": (1, 12, 1569, 64)}  # fmt: skip
    log.info("waiting for %s", LOCK)
    with bench_lock():
        log.info("timing")
        for rows, prop_row, models, x in speed_runs:
            *speed, speed_no_prop = speedups(models, x, target_s=args.target_s, max_reps=max_reps)
            results["micro"] += [{**row, **s} for row, s in zip(rows, speed, strict=True)]
            results["prop_attn"].append({**prop_row, **speed_no_prop})
        write_report(results, args.out)
        results["sdpa"] = sdpa_mask_cost(shapes, target_s=args.target_s / 2, max_reps=max_reps)
        write_report(results, args.out)
        for frame_count in [] if args.quick else args.base_frames:
            for label, arch in BASE.items():
                results["base"] += base_speed(label, arch, frame_count, args.base_fractions,
                                              target_s=3 * args.target_s, max_reps=max(3, max_reps // 3))  # fmt: skip
                log.info("base %s %d frames: %s", label, frame_count, [round(r["speedup"], 2) for r in results["base"]])
                write_report(results, args.out)
    write_report(results, args.out)
    print((args.out / "merging.md").read_text())  # noqa: T201 (a benchmark script's report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
