"""Loader throughput on original vs prepared (``vitzoo data prepare``) videos, per container.

Writes ``--videos`` textured, panning 1280x720 clips (``bench_loader.panning_video``) as H.264 mp4 (Kinetics'
container), then transcodes them at full size to xvid avi (UCF101 / HMDB51) and VP9 webm (SSv2) with
:func:`vitzoo.data.prepare.prepare_video`; prepares each set to a 256-pixel short side with
:func:`vitzoo.data.prepare.prepare_dataset`; and times full loader passes (decord, dense 16x2 clips,
RandomResizedCrop 224 + flip + normalise, batch 4) at 0 and 2 DataLoader workers with ``bench_loader.measure``.

Writes a markdown table to ``benchmarks/results/prepare.md`` (``--out``) and logs it.

Run: ``python benchmarks/bench_prepare.py [--videos 6] [--frames 48] [--repeats 2]`` (about 5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_loader import HERE, MEAN, STD, BenchConfig, measure, panning_video

from vitzoo.data import DenseSampler, VideoListDataset, train_transform, write_video
from vitzoo.data.prepare import PrepareOptions, prepare_dataset, prepare_video
from vitzoo.durable import write_text_atomic

logger = logging.getLogger("bench_prepare")
CONTAINERS = {".avi": "xvid (UCF101, HMDB51)", ".webm": "VP9 (SSv2)", ".mp4": "H.264 (Kinetics)"}


def make_sets(root: Path, config: BenchConfig) -> dict[str, Path]:
    """One folder of videos per container suffix, each with ``list.txt``."""
    sources = root / "source"
    for i in range(config.videos):
        frames = panning_video(np.random.default_rng(i), frames=config.frames, height=config.height, width=config.width)
        write_video(sources / f"{i:03d}.mp4", frames, config.fps, crf=20)
    sets = {}
    for suffix in CONTAINERS:
        folder = root / suffix.lstrip(".")
        folder.mkdir()
        for i in range(config.videos):
            target = folder / f"{i:03d}{suffix}"
            if suffix == ".mp4":
                target.write_bytes((sources / target.name).read_bytes())
            else:
                prepare_video(sources / f"{i:03d}.mp4", target, PrepareOptions(short_side=10_000, crf=20))
        listing = "".join(f"{i:03d}{suffix} {i % 4}\n" for i in range(config.videos)) * config.list_repeats
        (folder / "list.txt").write_text(listing)
        sets[suffix] = folder
    return sets


def run(config: BenchConfig) -> str:
    """Every container x (original, prepared) x workers; returns the markdown report."""
    sampler = DenseSampler(config.clip_frames, config.dense_interval, train=True)
    transform = train_transform(img_size=config.img_size, mean=MEAN, std=STD)
    rows = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_prepare_") as tmp:
        sets = make_sets(Path(tmp), config)
        for suffix, folder in sets.items():
            prepared = Path(tmp) / f"{folder.name}_256"
            start = time.perf_counter()
            report = prepare_dataset(folder, prepared, PrepareOptions(short_side=256), workers=2, progress=False)
            prep_s = time.perf_counter() - start
            sizes = [sum(p.stat().st_size for p in f.glob(f"*{suffix}")) / 2**20 for f in (folder, prepared)]
            for kind, root in (("original 1280x720", folder), ("prepared 455x256", prepared)):
                dataset = VideoListDataset(root, root / "list.txt", sampler=sampler, transform=transform)
                for workers in config.workers:
                    rates, cpu_ms = measure(dataset, workers=workers, config=config)
                    row = (
                        CONTAINERS[suffix],
                        kind,
                        workers,
                        statistics.median(rates),
                        min(rates),
                        max(rates),
                        statistics.median(cpu_ms),
                        sizes[kind.startswith("prepared")],
                    )
                    rows.append(row)
                    logger.info("%s %s workers=%d: %.1f clips/s, %.0f CPU ms/clip", *row[:4], row[6])
            logger.info("%s: prepared %d videos in %.1f s", suffix, len(report.written), prep_s)
    lines = [
        "| container | files | workers | clips/s (median) | range | CPU ms per clip | MiB |",
        "|---|---|---:|---:|---:|---:|---:|",
        *(
            f"| {c} | {k} | {w} | {m:.1f} | {lo:.1f}-{hi:.1f} | {cpu:.0f} | {mb:.1f} |"
            for c, k, w, m, lo, hi, cpu, mb in rows
        ),
        "",
        f"Setup: {config.videos} videos (each listed {config.list_repeats}x), {config.width}x{config.height}, "
        f"{config.frames} frames at {config.fps:g} fps, textured and panning; prepared: `vitzoo data prepare "
        f"--short-side 256`. decord, dense {config.clip_frames}x{config.dense_interval} clips, RandomResizedCrop "
        f"{config.img_size} + flip + normalise, batch {config.batch_size}, {config.repeats} timed passes after a "
        f"warm-up. Machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, shared "
        f"(1-minute load {load_before:.1f} before, {os.getloadavg()[0]:.1f} after).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "prepare.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = BenchConfig(
        videos=args.videos,
        list_repeats=2,
        frames=args.frames,
        height=720,
        width=1280,
        repeats=args.repeats,
        workers=(0, 2),
        backends=("decord",),
    )
    report = run(config)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, report)
    logger.info("\n%s", report)


if __name__ == "__main__":
    main()
