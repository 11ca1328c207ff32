"""How fast is ``vitzoo predict``, and how much of its time is decoding? Writes benchmarks/results/predict.{json,md}
and the long-video timeline plot benchmarks/results/predict_timeline.png (shown in docs/predict.md).

Three runs, each timed with :class:`vitzoo.inference.PredictStats` (inputs, windows, seconds decoding, seconds in
all):

1. the demo's videos: ``--num-videos`` fresh 16-frame 64 px motion clips (the demo's validation set's kind) through
   every shipped motion model, each clip with the evaluation views the weights record (2 clips x 3 crops);
2. a long video: ``--long-seconds`` of motion clips stitched (left, up, right, down, ...) at 128 px, 25 fps, through
   a base-size model (``--base``, random weights: only the speed is measured) with its sliding windows;
3. the same long video through the shipped ViViT joint motion model: the timeline plot (per-window probabilities
   over time, the stitched truth as a band) and the segments.

Run: ``python benchmarks/bench_predict.py [--num-videos 32] [--long-seconds 12] [--base timesformer_base_patch16_224]
[--threads 2]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import vitzoo
from vitzoo.data.synthetic import motion_clip, write_video
from vitzoo.durable import write_atomic, write_text_atomic
from vitzoo.inference import PredictStats

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WEIGHTS = ROOT / "weights"
MOTION = [f"{n}_motion" for n in ("vivit_joint_micro_4x2", "vivit_fact_enc_micro_4x2", "vivit_fact_sa_micro_4x2",
                                  "vivit_fact_dot_micro_4x2", "video_swin_micro_4x2", "mvitv2_micro_8x2")]  # fmt: skip
DIRECTIONS = ("left", "up", "right", "down")
FPS = 25.0


def write_clips(folder: Path, count: int) -> list[Path]:
    """``count`` demo-like clips (16 frames, 64 px), directions in turn."""
    paths = []
    for i in range(count):
        path = folder / f"{i:04d}.mp4"
        write_video(path, motion_clip(DIRECTIONS[i % 4], np.random.default_rng([99, i])), FPS)
        paths.append(path)
    return paths


def write_long(path: Path, seconds: float, *, size: int, part_seconds: float = 3.0) -> list[tuple[float, str]]:
    """A video of motion parts of ``part_seconds`` each (directions in turn); returns ``[(start s, direction)]``."""
    frames_each = round(part_seconds * FPS)
    parts = max(1, round(seconds / part_seconds))
    rng = np.random.default_rng(7)
    video = [motion_clip(DIRECTIONS[i % 4], rng, num_frames=frames_each, size=size) for i in range(parts)]
    write_video(path, np.concatenate(video), FPS)
    return [(i * part_seconds, DIRECTIONS[i % 4]) for i in range(parts)]


def run(model, inputs, **options) -> tuple[list, dict]:
    """Predict and summarise the timing."""
    stats = PredictStats()
    cpu = time.process_time()
    records = vitzoo.predict(model, inputs, progress=False, stats=stats, **options)
    cpu = time.process_time() - cpu
    row = {
        "inputs": stats.inputs,
        "windows": stats.windows,
        "seconds": round(stats.total_s, 3),
        "cpu_seconds": round(cpu, 3),  # this process's CPU time: shows how much of the wall time others took
        "videos_per_cpu_s": round(stats.inputs / cpu, 2),
        "videos_per_s": round(stats.inputs / stats.total_s, 2),
        "windows_per_s": round(stats.windows / stats.total_s, 2),
        "decode_share": round(stats.decode_s / stats.total_s, 3),
    }
    return records, row


def plot_timeline(record, truth: list[tuple[float, str]], end: float, path: Path) -> Path:
    """Per-window probabilities at the window centres, the stitched truth as coloured bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = dict(zip(DIRECTIONS, ("tab:blue", "tab:orange", "tab:green", "tab:red"), strict=True))
    fig, ax = plt.subplots(figsize=(9, 3.2))
    bounds = [t for t, _ in truth] + [end]
    for (start, label), stop in zip(truth, bounds[1:], strict=True):
        ax.axvspan(start, stop, color=colours[label], alpha=0.12, lw=0)
    centres = [(w.start + w.end) / 2 for w in record.windows]
    for label in DIRECTIONS:
        probs = [next((p.prob for p in w.topk if p.label == label), 0.0) for w in record.windows]
        ax.plot(centres, probs, marker=".", color=colours[label], label=label)
    ax.set(xlabel="time (s): window centre; bands: the true direction", ylabel="probability", ylim=(0, 1.02))
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5), frameon=False)
    fig.tight_layout()
    out = write_atomic(path, lambda f: fig.savefig(f, dpi=110, format="png"))
    plt.close(fig)
    return out


def main() -> None:
    """Run the three measurements and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-videos", type=int, default=32)
    parser.add_argument("--long-seconds", type=float, default=12.0)
    parser.add_argument("--base", default="timesformer_base_patch16_224")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict = {"machine": f"{platform.processor() or platform.machine()}, {args.threads} threads, CPU"}
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        tmp = Path(tmp)
        clips = write_clips(tmp / "clips", args.num_videos)
        results["demo_videos"] = {}
        for name in MOTION:
            records, row = run(WEIGHTS / f"{name}.safetensors", clips, batch_size=8)
            row["top1"] = sum(r.topk[0].label == DIRECTIONS[i % 4] for i, r in enumerate(records)) / len(records)
            results["demo_videos"][name] = row
            print(name, row)
        truth = write_long(tmp / "long.mp4", args.long_seconds, size=128)
        base = vitzoo.create(args.base, num_classes=400)
        _, row = run(base, tmp / "long.mp4", batch_size=4)
        results["long_video_base"] = {"model": args.base, "seconds_of_video": args.long_seconds, **row}
        print(args.base, row)
        (record,), row = run(WEIGHTS / f"{MOTION[0]}.safetensors", tmp / "long.mp4", batch_size=16)
        results["long_video_micro"] = {"model": MOTION[0], **row}
        results["segments"] = [[round(s.start, 2), round(s.end, 2), s.label] for s in record.segments]
        results["truth"] = truth
        print(MOTION[0], row)
        plot_timeline(record, truth, args.long_seconds, RESULTS / "predict_timeline.png")
    write_text_atomic(RESULTS / "predict.json", json.dumps(results, indent=1) + "\n")
    write_text_atomic(RESULTS / "predict.md", markdown(results))


def markdown(results: dict) -> str:
    """The tables of docs/predict.md."""
    lines = [f"Machine: {results['machine']}.", "",
             "| model | videos/s | windows/s | videos per CPU-second | decode share | top-1 |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name, row in results["demo_videos"].items():
        lines.append(f"| {name} | {row['videos_per_s']} | {row['windows_per_s']} | {row['videos_per_cpu_s']} | "
                     f"{100 * row['decode_share']:.0f}% | {100 * row['top1']:.0f}% |")  # fmt: skip
    header = "| long video | model | windows | windows/s | CPU seconds | decode share |"
    lines += ["", header, "|---|---|---|---|---|---|"]
    for key in ("long_video_base", "long_video_micro"):
        row = results[key]
        video = f"{results['long_video_base']['seconds_of_video']:.0f} s, 128 px"
        lines.append(f"| {video} | {row['model']} | {row['windows']} | {row['windows_per_s']} | "
                     f"{row['cpu_seconds']} | {100 * row['decode_share']:.0f}% |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
