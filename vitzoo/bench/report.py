"""Render a :class:`~vitzoo.bench.suite.SuiteResult` as a markdown table and a PNG plot."""

from __future__ import annotations

import math
from pathlib import Path

from vitzoo.bench.suite import Row, SuiteResult

COLUMNS = (
    "model", "library", "mode", "variant", "batch", "frames", "tokens", "GFLOP", "median s (min-max)",
    "items/s", "GFLOP/s", "% peak", "tensor MiB", "RSS MiB", "vitzoo speed-up", "vitzoo mem ratio", "compile speed-up",
)  # fmt: skip


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def _mib(value: float | None) -> str:
    return _num(value, ".1f" if value is not None and abs(value) < 10 else ".0f")


def _cells(row: Row) -> list[str]:
    if row.error:
        return (
            [row.model, row.library, row.mode, row.variant, str(row.batch), _num(row.frames, "d")]
            + [f"failed: {row.error}"]
            + [""] * (len(COLUMNS) - 7)
        )
    return [
        row.model,
        row.library,
        row.mode,
        row.variant,
        str(row.batch),
        _num(row.frames, "d"),
        str(row.tokens),
        _num(row.gflop, ".1f"),
        f"{row.median_s:.3f} ({row.min_s:.3f}-{row.max_s:.3f})",
        _num(row.items_per_s, ".2f"),
        _num(row.gflop_per_s, ".1f"),
        _num(100 * row.peak_fraction, ".0f"),
        _mib(row.mem_tensor_mib),
        _mib(row.mem_rss_mib),
        _num(row.speedup, ".2f") + (f" ({row.speedup_min:.2f}-{row.speedup_max:.2f})" if row.speedup else ""),
        _num(row.mem_ratio, ".2f"),
        _num(row.compile_speedup, ".2f")
        + (f" ({row.compile_speedup_min:.2f}-{row.compile_speedup_max:.2f})" if row.compile_speedup else ""),
    ]


def header(result: SuiteResult) -> str:
    """The machine, load and peak lines that precede the table."""
    m = result.machine
    libs = ", ".join(f"{k} {v}" for k, v in m["libraries"].items())
    peaks = "; ".join(
        f"{p}: " + ", ".join(f"{n}²: {g:.0f}" for n, g in sizes.items()) for p, sizes in result.peak_gflops.items()
    )
    end = ", ".join(f"{n}²: {g:.0f}" for n, g in result.peak_gflops_end.items()) or "not yet"
    samples = sorted(result.peak_samples) or [float("nan")]
    best = ", ".join(f"{result.peak(p):.0f} {p}" for p in result.peak_gflops)
    return "\n".join(
        [
            f"- Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, {m['torch_threads']} torch threads "
            f"({m['torch_interop_threads']} inter-op), {m['torch_build']}",
            f"- Python {m['python']}; {libs}",
            f"- Measured `torch.mm` peak, GFLOP/s (best of 5): {peaks}; fp32 again at the end: {end}; 2048² before "
            f"each of the {len(result.peak_samples)} comparisons: min {samples[0]:.0f}, median "
            f"{samples[len(samples) // 2]:.0f}, max {samples[-1]:.0f}. `% peak` uses the best: {best}",
            f"- Load average (1/5/15 min) at start: {' '.join(f'{x:.2f}' for x in result.load_start)}, "
            f"at end: {' '.join(f'{x:.2f}' for x in result.load_end)}; suite wall time {result.wall_s / 60:.1f} min"
            + ("" if result.complete else " (PARTIAL: written after each comparison; the run went on or stopped)"),
            f"- Memory: {result.memory_method}",
        ]
    )


def markdown_table(rows: list[Row]) -> str:
    """All rows, one markdown table per group (in order of first appearance)."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    out = []
    for group, members in groups.items():
        out += [f"### {group}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        out += ["| " + " | ".join(_cells(r)) + " |" for r in members]
        out.append("")
    return "\n".join(out)


def markdown_report(result: SuiteResult) -> str:
    """Header, column legend and tables."""
    legend = (
        "`GFLOP`: analytic model FLOPs of one step (see `vitzoo/bench/flops.py`); `% peak`: achieved GFLOP/s "
        "over the measured fp32 (or bf16) `torch.mm` peak; `tensor MiB`: peak of PyTorch-allocated memory during one "
        "step; `RSS MiB`: resident-set growth in that step (both in a fresh process); "
        "`vitzoo speed-up`: reference time / vitzoo time at the same config, median (and range) over the "
        "interleaved repetitions (>1: vitzoo faster); "
        "`vitzoo mem ratio`: vitzoo tensor MiB / reference tensor MiB (<1: vitzoo smaller); "
        "`compile speed-up` (`+compile` rows with an eager twin in the comparison): eager time / compiled time, "
        "median (and range) over the interleaved repetitions (>1: compiled faster; compilation itself, in the first "
        "call, is not counted)."
    )
    return f"## Benchmark `{result.name}`\n\n{header(result)}\n\n{legend}\n\n{markdown_table(result.rows)}"


def plot(result: SuiteResult, path: str | Path) -> Path:
    """Token sweep of the video encoders: seconds per clip, analytic FLOPs and % of matmul peak against tokens."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rows = [r for r in result.rows if r.group.startswith("video: frame") and not r.error]
    fig, (ax_time, ax_flops, ax_peak) = plt.subplots(1, 3, figsize=(17, 5.5))
    series: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        series.setdefault((row.model, row.library), []).append(row)
    colors = {model: f"C{i}" for i, model in enumerate(sorted({model for model, _ in series}))}
    for (model, library), members in sorted(series.items()):
        members.sort(key=lambda r: r.tokens)
        tokens = [r.tokens for r in members]
        line = dict(ls="-", marker="o") if library == "vitzoo" else dict(ls="--", marker="x")
        style = dict(color=colors[model], **line)
        label = f"{model} ({library})"
        ax_time.plot(tokens, [r.median_s / r.batch for r in members], label=label, **style)
        ax_peak.plot(tokens, [100 * r.peak_fraction for r in members], label=label, **style)
        if library == "vitzoo":
            ax_flops.plot(tokens, [r.gflop / r.batch for r in members], label=model, **style)
    for ax, title, ylabel in (
        (ax_time, "fp32 inference time per clip", "seconds (log)"),
        (ax_flops, "analytic forward FLOPs per clip", "GFLOP (log)"),
        (ax_peak, "achieved fraction of measured fp32 matmul peak", "% of torch.mm peak"),
    ):
        ax.set_title(title)
        ax.set_xlabel("patch tokens per clip (frames / tubelet x 196)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.set_xscale("log", base=2)
        if ax is not ax_peak:
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    if series:
        ax_time.legend(fontsize=6)
        ax_flops.legend(fontsize=7)
    m = result.machine
    fig.suptitle(f"vitzoo vs references (solid: vitzoo, dashed: reference), {m['cpu']}, {m['torch_threads']} threads")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_results(result: SuiteResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``{name}.json``, ``{name}.md`` and ``{name}.png`` into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{result.name}.json", "md": out / f"{result.name}.md", "png": out / f"{result.name}.png"}
    paths["json"].write_text(result.to_json())
    paths["md"].write_text(markdown_report(result))
    plot(result, paths["png"])
    return paths
