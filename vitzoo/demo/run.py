"""``make demo`` / ``vitzoo demo``: the main job end to end, on 2 CPU cores, with no downloads.

1. Generate the moving-disk dataset (real mp4 files; the label is the direction of motion, which no single
   frame shows).
2. Initialise each ViViT encoder (joint, factorised encoder, factorised self-attention, factorised dot-product)
   from the image ViT this project pre-trained and ships in ``weights/`` with the same readout (class token
   for Models 1 and 2, mean of the patch tokens for Models 3 and 4), and the micro Video Swin from the image
   Swin shipped beside it (kernel and bias tables inflated); fine-tune each through the decord loader with the
   recipe ``configs/demo_motion_micro.yaml``; train a frame-averaging ViT baseline and the same video models
   from scratch for the same number of steps.
3. Evaluate every run with multi-view testing (temporal clips x spatial crops), export the factorised encoder
   as safetensors and ONNX (checked against PyTorch in onnxruntime), and print the results table and the
   ViT-initialised vs scratch comparison at equal steps (:mod:`vitzoo.demo.curves`).
4. Train a micro MViTv2 (multiscale: pooling attention, three stages) on the same task from scratch, with the
   same recipe and number of steps.

``--runs PATTERN`` runs only the runs whose model name matches the glob (e.g. ``--runs 'mvit*'``).

Runs that already finished in ``--out`` are reused, so an interrupted demo continues where it stopped.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from vitzoo.checkpoints.io import weights_dir
from vitzoo.train.checkpointing import CheckpointManager
from vitzoo.train.config import RunConfig
from vitzoo.train.recipe import default_checkpoint, evaluate_from_config, load_run_config, train_from_config

log = logging.getLogger(__name__)

CONFIGS_ENV = "VITZOO_CONFIGS_DIR"
RECIPE = "demo_motion_micro.yaml"


# The shipped image ViTs (``python -m vitzoo.demo.pretrain [--avg-pool]``): each encoder starts from the one
# whose readout it shares: a class token (Models 1, 2) or the mean of the patch tokens (Models 3, 4).
CLASS_TOKEN_VIT = "vit_micro_patch4_32_shapes"
AVG_POOL_VIT = "vit_micro_patch4_32_shapes_avgpool"
IMAGE_SWIN = "swin_micro_patch4_window4_32_shapes"  # ``python -m vitzoo.demo.pretrain --swin``
INIT_LABELS = {CLASS_TOKEN_VIT: "ViT, class token", AVG_POOL_VIT: "ViT, avg-pool", IMAGE_SWIN: "image Swin"}
INIT_TAGS = {CLASS_TOKEN_VIT: "vit", AVG_POOL_VIT: "vit", IMAGE_SWIN: "image_swin"}  # run folder suffixes


@dataclass(frozen=True)
class DemoRun:
    """One training run of the demo: a registered model, from a shipped ViT (``init``) or from scratch."""

    label: str
    model: str
    pretrained: bool = True
    init: str = CLASS_TOKEN_VIT  # weights/ name of the image model it starts from when ``pretrained``
    sets: tuple[str, ...] = ()  # further recipe overrides of this run
    ship: bool = False  # ``--ship`` copies its weights into weights/

    @property
    def tag(self) -> str:
        """Folder name of the run."""
        return f"{self.model}_{INIT_TAGS[self.init] if self.pretrained else 'scratch'}"


ENCODER_RUNS = [
    DemoRun("joint (Model 1)", "vivit_joint_micro_4x2", ship=True),
    DemoRun("factorised encoder (Model 2)", "vivit_fact_enc_micro_4x2", ship=True),
    DemoRun("factorised self-attention (Model 3)", "vivit_fact_sa_micro_4x2", init=AVG_POOL_VIT, ship=True),
    DemoRun("factorised dot-product (Model 4)", "vivit_fact_dot_micro_4x2", init=AVG_POOL_VIT, ship=True),
]
# the paper's inflation: the image Swin's patch kernel on every frame of a tubelet, divided by its length
SWIN_RUNS = [
    DemoRun("Video Swin", "video_swin_micro_4x2", init=IMAGE_SWIN, sets=("model.tubelet_init=average",), ship=True)
]
PRETRAINED_RUNS = ENCODER_RUNS + SWIN_RUNS
BASELINE_RUNS = [DemoRun("frame-averaging ViT (baseline)", "frame_avg_micro_patch4_32")]
SCRATCH_RUNS = [DemoRun(r.label, r.model, pretrained=False, sets=r.sets) for r in PRETRAINED_RUNS]
# No image MViT is shipped to start from: the multiscale model learns the task from scratch.
MVIT_RUNS = [DemoRun("MViTv2 micro (multiscale)", "mvitv2_micro_8x2", pretrained=False, ship=True)]


@dataclass
class RunResult:
    """What the results table shows for one run."""

    label: str
    model: str
    init: str
    top1: float
    top5: float
    views: int
    steps: int
    train_seconds: float
    weights: str


def configs_dir() -> Path:
    """Folder of the YAML recipes: ``$VITZOO_CONFIGS_DIR`` or ``configs/`` of the checkout."""
    env = os.environ.get(CONFIGS_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "configs"


def make_data(root: Path, *, num_train: int, num_val: int, shape: str, distractors: int, num_frames: int = 16) -> dict:
    """Write the motion dataset unless ``root`` already holds this one (written to a temp folder first).

    Returns the dataset's parameters (recorded in ``root/dataset.json``).
    """
    from vitzoo.data import make_motion_dataset

    marker = root / "dataset.json"
    wanted = {"num_train": num_train, "num_val": num_val, "num_frames": num_frames, "size": 64, "seed": 0}
    wanted |= {"shape": shape, "distractors": distractors}
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        log.info("reusing the dataset in %s", root)
        return wanted
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    make_motion_dataset(tmp, **wanted)
    (tmp / "dataset.json").write_text(json.dumps(wanted))
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return wanted


def train_once(recipe: RunConfig, marker: Path, *, what: str) -> dict:
    """Train ``recipe`` unless ``marker`` says it finished (resuming from its last checkpoint if it has one), then
    return the marker's record: ``seconds``, ``steps`` and ``best_value`` (the monitored metric's best)."""
    if not marker.is_file():
        resume = CheckpointManager(Path(recipe.output_dir) / "checkpoints").latest() is not None
        start = time.perf_counter()
        fitted = train_from_config(recipe, resume=resume)
        if fitted.interrupted:
            raise KeyboardInterrupt(f"{what} interrupted; run the demo again to continue")
        record = {"seconds": time.perf_counter() - start, "steps": fitted.step, "best_value": fitted.best_value}
        marker.write_text(json.dumps(record))
    return json.loads(marker.read_text())


def train_and_evaluate(run: DemoRun, *, out: Path, overrides: list[str]) -> RunResult:
    """Fine-tune (or resume, or reuse) one run, then evaluate its final weights with multi-view testing."""
    run_dir = out / "runs" / run.tag
    init = run.init if run.pretrained else "null"
    sets = [f"model.name={run.model}", f"model.pretrained={init}", f"data.root={out / 'data'}", f"output_dir={run_dir}"]
    sets += [*run.sets, *overrides]
    recipe = load_run_config(configs_dir() / RECIPE, sets)
    trained = train_once(recipe, run_dir / "train_seconds.json", what=f"training of {run.tag}")
    weights = default_checkpoint(recipe)
    result = evaluate_from_config(recipe, checkpoint=weights, out_dir=run_dir / "eval")
    return RunResult(
        label=run.label,
        model=run.model,
        init=INIT_LABELS[run.init] if run.pretrained else "scratch",
        top1=result.top1,
        top5=result.top5,
        views=result.num_views,
        steps=trained["steps"],
        train_seconds=trained["seconds"],
        weights=str(weights),
    )


def results_table(results: list[RunResult]) -> str:
    """The results as a markdown table."""
    lines = [
        "| model | init | top-1 | top-5 | views | steps | train time |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.label} | {r.init} | {100 * r.top1:.1f}% | {100 * r.top5:.1f}% | {r.views} | {r.steps} | "
            f"{r.train_seconds:.0f} s |"
        )
    return "\n".join(lines)


def plot_results(results: list[RunResult], path: Path) -> None:
    """A bar chart of top-1 per run (chance level marked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    names = [f"{r.label}\n[{r.init}]" for r in results]
    colours = ["tab:blue" if r.init != "scratch" else "tab:gray" for r in results]
    ax.barh(names, [100 * r.top1 for r in results], color=colours)
    ax.axvline(25, color="tab:red", linestyle="--", label="chance (4 classes)")
    ax.set_xlabel("top-1 on held-out videos (%), multi-view")
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def init_comparison(results: list[RunResult], out: Path) -> str:
    """Table and loss plot (``init_vs_scratch.png``) of each run from its image model and from scratch; "" if none."""
    from vitzoo.demo.curves import comparison_table, plot_loss_curves

    done = {(r.model, r.init == "scratch"): r for r in results}
    both = [
        (vit, scratch)
        for vit, scratch in zip(PRETRAINED_RUNS, SCRATCH_RUNS, strict=True)
        if (vit.model, False) in done and (scratch.model, True) in done
    ]
    if not both:
        return ""
    pairs = [
        (vit.label, INIT_LABELS[vit.init].split(",")[0], out / "runs" / vit.tag, out / "runs" / scratch.tag)
        for vit, scratch in both
    ]
    plot_loss_curves(pairs, out / "init_vs_scratch.png")
    return comparison_table(pairs, steps=done[(both[0][0].model, False)].steps)


def export_model(weights: str, out: Path) -> dict[str, str | float]:
    """Export a fine-tuned model as safetensors and ONNX; returns the paths and the ONNX check."""
    from vitzoo.api import load
    from vitzoo.export import export, onnx_max_abs_diff

    model = load(weights)
    st = export(model, out / "export" / "vivit_fact_enc_micro_motion.safetensors")
    onnx = export(model, out / "export" / "vivit_fact_enc_micro_motion.onnx")
    return {"safetensors": str(st), "onnx": str(onnx), "onnx_max_abs_diff": onnx_max_abs_diff(model, onnx)}


def ship(runs: list[DemoRun], results: list[RunResult], *, recipe_overrides: list[str], dataset: dict) -> None:
    """Copy the weights of the runs marked ``ship`` (the ViT-initialised encoders, the MViT) into ``weights/`` and
    record them in the manifest."""
    from vitzoo.demo import manifest

    for run, r in zip(runs, results, strict=True):
        if not run.ship:
            continue
        dest = weights_dir() / f"{r.model}_motion.safetensors"
        shutil.copyfile(r.weights, dest)
        init = run.init if run.pretrained else "null"
        manifest.record(
            dest,
            recipe={
                "config": f"configs/{RECIPE}",
                "overrides": [f"model.name={r.model}", f"model.pretrained={init}", *run.sets, *recipe_overrides],
                "dataset": dataset,
            },  # fmt: skip
            metrics={"val_top1": round(r.top1, 4), "val_top5": round(r.top5, 4), "views": r.views},
            reproduce="make demo ARGS=--ship",
        )


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns a process exit status (0 when every encoder reached the target)."""
    parser = argparse.ArgumentParser(prog="vitzoo demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (reused if present)")
    parser.add_argument("--num-train", type=int, default=480, help="training videos")
    parser.add_argument("--num-val", type=int, default=160, help="held-out videos")
    parser.add_argument("--shape", default="disk", help="the moving shape whose direction is the label")
    parser.add_argument(
        "--distractors", type=int, default=0, help="other shapes moving other ways (a harder task: 0 to 3)"
    )
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    parser.add_argument(
        "--seed", type=int, default=None, help="override the recipe's training seed (the dataset stays the same)"
    )
    parser.add_argument("--no-scratch", action="store_true", help="skip the from-scratch comparison runs")
    parser.add_argument("--ship", action="store_true", help="copy the fine-tuned weights into weights/")
    parser.add_argument("--runs", default="*", help="only the runs whose model name matches this glob")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out: Path = args.out
    overrides = [] if args.epochs is None else [f"train.epochs={args.epochs}"]
    overrides += [] if args.seed is None else [f"train.seed={args.seed}"]
    started = time.perf_counter()

    dataset = make_data(
        out / "data", num_train=args.num_train, num_val=args.num_val, shape=args.shape, distractors=args.distractors
    )
    runs = PRETRAINED_RUNS + BASELINE_RUNS + ([] if args.no_scratch else SCRATCH_RUNS) + MVIT_RUNS
    runs = [run for run in runs if fnmatch.fnmatchcase(run.model, args.runs)]
    if not runs:
        parser.error(f"--runs {args.runs!r} matches no demo run")
    results = [train_and_evaluate(run, out=out, overrides=overrides) for run in runs]
    fact_enc = next((r for r in results if r.model == "vivit_fact_enc_micro_4x2" and r.init != "scratch"), None)
    exported = export_model(fact_enc.weights, out) if fact_enc is not None else None

    table = results_table(results)
    plot_results(results, out / "results.png")
    init_table = init_comparison(results, out)
    (out / "results.md").write_text(table + "\n\n" + (init_table + "\n" if init_table else ""))
    (out / "results.json").write_text(
        json.dumps({"runs": [asdict(r) for r in results], "export": exported}, indent=2) + "\n"
    )
    if args.ship:
        ship(runs, results, recipe_overrides=overrides, dataset=dataset)
    print(f"\n{table}\n")
    if init_table:
        print(f"ViT-initialised vs from scratch at equal steps ({out / 'init_vs_scratch.png'}):\n{init_table}\n")
    if exported is not None:
        print(f"exported: {exported['safetensors']}, {exported['onnx']} (ONNX vs PyTorch max |diff| "
              f"{exported['onnx_max_abs_diff']:.1e})")  # fmt: skip
    print(f"plot: {out / 'results.png'}; per-run curves and confusion matrices under {out / 'runs'}")
    print(f"total time: {time.perf_counter() - started:.0f} s")
    pretrained = {run.model for run in PRETRAINED_RUNS}
    reached = all(r.top1 >= 0.9 for r in results if r.init != "scratch" and r.model in pretrained)
    return 0 if reached else 1
