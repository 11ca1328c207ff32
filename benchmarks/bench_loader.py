"""Video loader throughput: decoded, sampled and augmented clips per second, decord vs PyAV.

Generates ``--videos`` H.264 mp4s of 320x240 and ``--frames`` frames (a textured background panning
under light per-frame noise) into a temporary directory, then for each backend (decord, PyAV), each
DataLoader worker count (0, 1, 2) and each sampler (TSN segments, dense) times full passes over the
dataset through ``make_loader`` with the training transform at 224 px (RandomResizedCrop + flip +
normalise). Each setting gets one warm-up pass (which also starts the persistent workers), then
``--repeats`` timed passes; the table reports the median (and range) of clips/s.

Writes a markdown table to ``benchmarks/results/loader.md`` (``--out``) and logs it.

Run: ``python benchmarks/bench_loader.py [--videos 20] [--frames 64] [--repeats 3] [--batch-size 4]
[--wait-quiet 0.7]`` (about 4 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vitzoo.data import (
    DenseSampler,
    SegmentSampler,
    VideoListDataset,
    make_loader,
    train_transform,
    write_video,
)

logger = logging.getLogger("bench_loader")
HERE = Path(__file__).resolve().parent
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class BenchConfig:
    """What to measure."""

    videos: int = 20
    list_repeats: int = 4  # each video listed this many times: longer passes, steadier numbers
    frames: int = 64
    height: int = 240
    width: int = 320
    fps: float = 30.0
    clip_frames: int = 16
    dense_interval: int = 2
    img_size: int = 224
    batch_size: int = 4
    repeats: int = 3
    workers: tuple[int, ...] = (0, 1, 2)
    backends: tuple[str, ...] = ("decord", "pyav")


def panning_video(rng: np.random.Generator, *, frames: int, height: int, width: int) -> np.ndarray:
    """``(T, H, W, 3)`` uint8: a smooth random texture panning 2 px/frame plus light noise."""
    coarse = rng.uniform(0, 255, (height // 8 + 2, (width + 2 * frames) // 8 + 2, 3))
    texture = (
        torch.nn.functional.interpolate(
            torch.from_numpy(coarse).permute(2, 0, 1)[None],
            scale_factor=8,
            mode="bicubic",
            align_corners=False,
        )[0]
        .permute(1, 2, 0)
        .numpy()
    )  # (H', W', 3), smooth
    out = np.empty((frames, height, width, 3), dtype=np.uint8)
    for t in range(frames):
        view = texture[:height, 2 * t : 2 * t + width] + rng.normal(0, 3, (height, width, 3))
        out[t] = np.clip(view, 0, 255)
    return out


def make_videos(root: Path, config: BenchConfig) -> Path:
    """Write the benchmark videos and an annotation list; returns the list's path."""
    lines = []
    for i in range(config.videos):
        rng = np.random.default_rng(i)
        frames = panning_video(rng, frames=config.frames, height=config.height, width=config.width)
        write_video(root / f"{i:03d}.mp4", frames, config.fps)
        lines.append(f"{i:03d}.mp4 {i % 4}\n")
    listing = root / "list.txt"
    listing.write_text("".join(lines) * config.list_repeats)
    return listing


def wait_quiet(load: float, timeout: float) -> float:
    """Wait until the 1-minute load average is below ``load`` (at most ``timeout`` s); return it."""
    deadline = time.monotonic() + timeout
    while os.getloadavg()[0] >= load and time.monotonic() < deadline:
        logger.info("waiting for a quiet machine (load %.2f >= %.2f)", os.getloadavg()[0], load)
        time.sleep(15)
    return os.getloadavg()[0]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (all its threads), from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _loader_cpu_seconds(loader) -> float:
    """CPU time of this process plus the loader's worker processes (private DataLoader attribute)."""
    total = time.process_time()
    workers = getattr(getattr(loader, "_iterator", None), "_workers", [])
    return total + sum(_cpu_seconds(w.pid) for w in workers if w.pid is not None)


def measure(dataset, *, workers: int, config: BenchConfig) -> tuple[list[float], list[float]]:
    """Clips/s and CPU ms per clip (main process + workers) of ``repeats`` passes after a warm-up."""
    timeout = 300 if workers else 0
    loader = make_loader(
        dataset, batch_size=config.batch_size, num_workers=workers, shuffle=True, seed=0, timeout=timeout
    )
    for _ in loader:  # warm-up: starts the workers, fills caches
        pass
    rates, cpu_ms = [], []
    for _ in range(config.repeats):
        start, cpu_start, clips = time.perf_counter(), _loader_cpu_seconds(loader), 0
        for batch, _labels in loader:
            clips += batch.shape[0]
        rates.append(clips / (time.perf_counter() - start))
        cpu_ms.append(1000 * (_loader_cpu_seconds(loader) - cpu_start) / clips)
    del loader  # shuts the persistent workers down
    return rates, cpu_ms


def run(config: BenchConfig) -> str:
    """Run every setting and return the markdown report."""
    samplers = {
        f"segment {config.clip_frames}": SegmentSampler(config.clip_frames, train=True),
        f"dense {config.clip_frames}x{config.dense_interval}": DenseSampler(
            config.clip_frames, config.dense_interval, train=True
        ),
    }
    transform = train_transform(img_size=config.img_size, mean=MEAN, std=STD)
    rows = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_loader_") as tmp:
        start = time.perf_counter()
        listing = make_videos(Path(tmp), config)
        logger.info("wrote %d videos in %.1f s", config.videos, time.perf_counter() - start)
        for backend in config.backends:
            for sampler_name, sampler in samplers.items():
                dataset = VideoListDataset(tmp, listing, sampler=sampler, transform=transform, backend=backend)
                for workers in config.workers:
                    rates, cpu_ms = measure(dataset, workers=workers, config=config)
                    median, cpu = statistics.median(rates), statistics.median(cpu_ms)
                    rows.append((backend, sampler_name, workers, median, min(rates), max(rates), cpu))
                    logger.info(
                        "%-6s %-12s workers=%d  %.1f clips/s  %.0f CPU ms/clip",
                        backend, sampler_name, workers, median, cpu,
                    )  # fmt: skip
    load_after = os.getloadavg()[0]
    header = [
        "| backend | sampler | workers | clips/s (median) | range | CPU ms per clip |",
        "|---|---|---:|---:|---:|---:|",
    ]
    body = [f"| {b} | {s} | {w} | {m:.1f} | {lo:.1f}-{hi:.1f} | {c:.0f} |" for b, s, w, m, lo, hi, c in rows]
    notes = [
        "",
        f"{config.videos} videos (each listed {config.list_repeats}x: {config.videos * config.list_repeats} "
        f"clips per pass), {config.width}x{config.height}, {config.frames} frames at "
        f"{config.fps:g} fps, H.264 yuv420p (crf 18). Clips of {config.clip_frames} frames, "
        f"RandomResizedCrop to {config.img_size} + flip + normalise, batch {config.batch_size}, "
        f"{config.repeats} timed passes after one warm-up pass. "
        "Workers: fork, persistent, 1 decoder thread each; 0 workers = main process "
        f"(torch intra-op threads: {torch.get_num_threads()}). CPU ms per clip: user + system time of the "
        "main process and the workers over a pass, divided by its clips (the loader's share of the cores; "
        "less sensitive to other load than clips/s).",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch "
        f"{torch.__version__}; 1-min load average {load_before:.2f} before, {load_after:.2f} after.",
    ]
    return "\n".join(header + body + notes) + "\n"


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "loader.md")
    parser.add_argument("--wait-quiet", type=float, default=None, help="first wait for load below this")
    parser.add_argument("--wait-timeout", type=float, default=1800.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.wait_quiet is not None:
        wait_quiet(args.wait_quiet, args.wait_timeout)
    config = BenchConfig(videos=args.videos, frames=args.frames, repeats=args.repeats, batch_size=args.batch_size)
    report = run(config)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    logger.info("\n%s\nwritten to %s", report, args.out)


if __name__ == "__main__":
    main()
