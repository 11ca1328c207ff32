"""Token merging under ``torch.compile``: the inference speed-up of merging when both the merged and the unmerged
model are compiled. Writes benchmarks/results/merging_compiled.{json,md} (shown in docs/performance.md).

At micro size the matching's many small ops cost about what merging saves in eager mode
(``bench_merging.py``); inductor fuses them. For each model (the demo's shipped micro weights, batch ``--batch``,
and ViViT-B joint / factorised encoder at ``--base-frames`` frames, 224 px, batch 1, random weights), one
comparison times, interleaved: the unmerged model eager and compiled, and at each fraction merged (ToMe's constant
``r`` and the front-loaded schedule of ``bench_merging.py``) the merged model eager and compiled. Each compiled
model's output is checked against its eager twin before timing. Held-out top-1 does not change under compile
(``tests/models/test_compile.py``); the accuracy at each fraction is in results/merging.md.

Run: ``python benchmarks/bench_merging_compiled.py [--out benchmarks/results] [--quick]`` (about 13 minutes on
2 cores).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import time
from pathlib import Path

import torch
from bench_merging import BASE, IMAGE, VIDEO, base_model, bench_lock, r_text, schedule_for, with_merging

import vitzoo
from vitzoo.bench.machine import load_average, machine_info
from vitzoo.bench.timing import paired_speedup, time_interleaved
from vitzoo.checkpoints.io import weights_dir
from vitzoo.durable import write_text_atomic

log = logging.getLogger("bench_merging_compiled")
FRACTIONS = (0.5, 0.75)
KINDS = ("constant", "front")


def variants(model: torch.nn.Module, tokens: int, fractions) -> list[tuple[float, str, int | list[int]]]:
    """``(fraction, schedule, r)`` of every merged variant, after the unmerged one ``(0, "none", 0)``."""
    depth = model.cfg.depth
    return [(0.0, "none", 0)] + [(f, k, schedule_for(f, tokens, depth, k)) for f in fractions for k in KINDS]


def compare(label: str, size: str, model: torch.nn.Module, tokens: int, x: torch.Tensor, args) -> list[dict]:
    """One interleaved comparison of ``model`` at every fraction merged, eager and compiled."""
    plans = variants(model, tokens, args.fractions)
    eager = [with_merging(model, r) for _, _, r in plans]
    compiled = [torch.compile(copy.deepcopy(m)) for m in eager]
    with torch.inference_mode():
        for e, c, (f, _, r) in zip(eager, compiled, plans, strict=True):  # compiles here, and checks the output
            start = time.perf_counter()
            torch.testing.assert_close(c(x), e(x), rtol=1e-4, atol=1e-4, msg=f"{label}, r={r_text(r)}")
            log.info("%s, %.1f%% merged: compiled and checked in %.0f s", label, 100 * f, time.perf_counter() - start)
        load = load_average()[0]
        models = [m for pair in zip(eager, compiled, strict=True) for m in pair]
        timings = time_interleaved([lambda m=m: m(x) for m in models], warmup=1, min_reps=3,
                                   max_reps=args.max_reps, target_s=args.target_s)  # fmt: skip
    rows = []
    base_eager, base_compiled = timings[0], timings[1]
    for i, (f, kind, r) in enumerate(plans):
        t_eager, t_compiled = timings[2 * i], timings[2 * i + 1]
        over_eager = paired_speedup(t_compiled, base_eager)
        merging_compiled = paired_speedup(t_compiled, base_compiled)
        merging_eager = paired_speedup(t_eager, base_eager)
        rows.append(dict(model=label, size=size, batch=x.shape[0], tokens=tokens, fraction=f, schedule=kind, r=r,
                         eager_s=t_eager.median, compiled_s=t_compiled.median,
                         merging_eager=merging_eager.median, merging_eager_range=[merging_eager.min, merging_eager.max],
                         merging_compiled=merging_compiled.median,
                         merging_compiled_range=[merging_compiled.min, merging_compiled.max],
                         over_eager=over_eager.median, load=load))  # fmt: skip
    log.info("%s: merging speed-up compiled %s", label, [round(r["merging_compiled"], 2) for r in rows])
    return rows


def markdown(results: dict) -> str:
    """The report's table."""
    lines = [
        "# Token merging under torch.compile",
        "",
        f"`{results['command']}` on {results['date']}; {results['machine']}. fp32 inference; every variant timed "
        "interleaved in one comparison per model (median seconds per batch). `merging speed-up`: unmerged / merged "
        "time, eager against eager and compiled against compiled (median and range of the per-repetition ratios); "
        "`merged + compiled over unmerged eager`: the two changes together.",
        "",
        "| model | batch | tokens / sequence | fraction merged | r / block | eager s | compiled s "
        "| merging speed-up, eager | merging speed-up, compiled | merged + compiled over unmerged eager | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        lo, hi = row["merging_eager_range"]
        clo, chi = row["merging_compiled_range"]
        lines.append(
            f"| {row['model']} ({row['size']}) | {row['batch']} | {row['tokens']} | {row['fraction']:.1%} | "
            f"{r_text(row['r'])} | {row['eager_s']:.4f} | {row['compiled_s']:.4f} | "
            f"{row['merging_eager']:.2f}x ({lo:.2f}-{hi:.2f}) | {row['merging_compiled']:.2f}x ({clo:.2f}-{chi:.2f}) | "
            f"{row['over_eager']:.2f}x | {row['load']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Time every subject, writing the report after each; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--batch", type=int, default=16, help="clips per timed batch at micro size")
    parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    parser.add_argument("--base-frames", type=int, nargs="*", default=[8], help="ViViT-B frames (none: skip)")
    parser.add_argument("--target-s", type=float, default=15.0, help="timed seconds per comparison")
    parser.add_argument("--max-reps", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="the joint micro model only, few repetitions")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch._dynamo.config.cache_size_limit = 64  # one graph per schedule and model
    if args.quick:
        args.max_reps, args.target_s, args.base_frames = 3, 1.0, []
    results = dict(command="python benchmarks/bench_merging_compiled.py" + (" --quick" if args.quick else ""),
                   date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), machine=machine_info().summary(),
                   rows=[])  # fmt: skip
    subjects = [(label, weights, tokens, args.batch) for label, (weights, tokens) in VIDEO.items()]
    subjects.append((IMAGE[0], IMAGE[1], IMAGE[2], 4 * args.batch))
    if args.quick:
        subjects = subjects[:1]
    args.out.mkdir(parents=True, exist_ok=True)

    def write() -> None:
        write_text_atomic(args.out / "merging_compiled.json", json.dumps(results, indent=1))
        write_text_atomic(args.out / "merging_compiled.md", markdown(results))

    with bench_lock():
        for label, weights, tokens, batch in subjects:
            model = vitzoo.load(weights_dir() / f"{weights}.safetensors").eval()
            x = torch.randn(batch, *model.input_shape, generator=torch.Generator().manual_seed(0))
            results["rows"] += compare(label, "micro", model, tokens, x, args)
            write()
        for frames in args.base_frames:
            for label, arch in BASE.items():
                model, tokens = base_model(arch, frames)
                x = torch.randn(1, *model.input_shape, generator=torch.Generator().manual_seed(0))
                results["rows"] += compare(f"{label}, {frames} frames", "base", model, tokens, x, args)
                write()
    print(markdown(results))  # noqa: T201 (a benchmark script's report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
