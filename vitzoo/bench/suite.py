"""The benchmark suite: vitzoo against the reference implementations at identical configs.

A :class:`Comparison` is one config run by vitzoo and by every reference for its architecture (see
``vitzoo.bench.references.references_for``), timed interleaved in this process; memory is measured per
case in a fresh process (``vitzoo.bench.memory``). :func:`run_suite` returns a :class:`SuiteResult`
whose rows carry time, throughput, analytic FLOPs, the fraction of the machine's measured matmul
peak, step memory, and, on reference rows, vitzoo's speed-up and memory ratio against them.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from tqdm import tqdm

from vitzoo.api import model_config
from vitzoo.bench.cases import Case, build_subject
from vitzoo.bench.machine import load_average, machine_info, matmul_peak
from vitzoo.bench.memory import measure_peak_memory
from vitzoo.bench.references import implementation, references_for
from vitzoo.bench.timing import paired_speedup, time_interleaved

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Comparison:
    """One config, run by vitzoo (``cases[0]``) and by its references; ``group`` labels the table section."""

    group: str
    cases: tuple[Case, ...]


def compare(model: str, *, group: str, impls: tuple[str, ...] | None = None, **case_fields: Any) -> Comparison:
    """vitzoo's ``model`` against ``impls`` (default: every reference of its architecture).

    The references' required overrides (e.g. ``qkv_bias=False`` for vit-pytorch) are applied to all
    cases, so every implementation builds the same config. ``case_fields`` are :class:`Case` fields (their
    ``overrides``, e.g. ``(("token_merging", 8),)``, are applied to every case too).
    """
    refs = references_for(model_config(model)) if impls is None else impls
    overrides: dict[str, Any] = dict(case_fields.pop("overrides", ()))
    for name in refs:
        overrides.update(implementation(name).overrides)
    frozen = tuple(sorted(overrides.items()))
    cases = tuple(Case(model, impl=name, overrides=frozen, **case_fields) for name in ("vitzoo", *refs))
    return Comparison(group=group, cases=cases)


def with_compiled(comparison: Comparison) -> Comparison:
    """``comparison`` plus a ``torch.compile`` twin of its vitzoo case, timed interleaved with it (unchanged when
    that case is compiled already): the twin's row carries ``compile_speedup`` (eager time / compiled time)."""
    ours = comparison.cases[0]
    if ours.compile:
        return comparison
    twin = replace(ours, compile=True)
    return comparison if twin in comparison.cases else replace(comparison, cases=(*comparison.cases, twin))


@dataclass
class Row:
    """The measurements of one case."""

    group: str
    model: str
    impl: str
    library: str
    mode: str
    precision: str
    variant: str
    batch: int
    frames: int | None
    tokens: int
    params_m: float
    gflop: float  # analytic model FLOPs of one step (forward, or forward + backward)
    median_s: float
    min_s: float
    max_s: float
    reps: int
    first_s: float
    items_per_s: float
    gflop_per_s: float
    peak_fraction: float  # of the measured matmul peak for this precision
    mem_tensor_mib: float | None = None  # peak PyTorch-allocated bytes during one step (vitzoo.bench.memory)
    mem_rss_mib: float | None = None  # resident-set growth during that step
    speedup: float | None = None  # reference rows: median over repetitions of this reference's time / vitzoo's
    speedup_min: float | None = None  # range of those paired ratios (the noise of the comparison)
    speedup_max: float | None = None
    mem_ratio: float | None = None  # reference rows: vitzoo tensor peak / this reference's
    error: str | None = None
    compile_speedup: float | None = None  # compiled rows: median over repetitions of the eager twin's time / this
    compile_speedup_min: float | None = None
    compile_speedup_max: float | None = None


@dataclass
class SuiteResult:
    """Everything a run produced, serialisable to JSON."""

    name: str
    machine: dict
    peak_gflops: dict[str, dict[int, float]]  # "fp32" / "bf16" -> size -> GFLOP/s, measured at the start
    peak_gflops_end: dict[int, float]  # fp32 again at the end (drift check)
    peak_samples: list[float]  # fp32 2048^2 GFLOP/s (best of 3) before every comparison: the machine's state
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float]
    wall_s: float
    memory_method: str
    rows: list[Row] = field(default_factory=list)
    complete: bool = True  # False: a snapshot after some comparisons (no end peak yet; the run went on or stopped)

    def peak(self, precision: str = "fp32") -> float:
        """Best measured matmul GFLOP/s for ``precision`` (fp32: over the start, end and per-comparison samples)."""
        best = max(self.peak_gflops[precision].values())
        if precision == "fp32":
            best = max(best, *self.peak_gflops_end.values(), *self.peak_samples)
        return best

    def to_json(self) -> str:
        """The result as JSON text."""
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> SuiteResult:
        """The result saved by :meth:`to_json` (JSON object keys come back as strings: sizes are ints again)."""
        data = json.loads(text)
        data["rows"] = [Row(**row) for row in data["rows"]]
        data["peak_gflops"] = {p: {int(n): g for n, g in sizes.items()} for p, sizes in data["peak_gflops"].items()}
        data["peak_gflops_end"] = {int(n): g for n, g in data["peak_gflops_end"].items()}
        data["load_start"], data["load_end"] = tuple(data["load_start"]), tuple(data["load_end"])
        return cls(**data)


def _timing_row(group: str, subject, timing, peak: float) -> Row:
    case = subject.case
    median = timing.median
    gflop = subject.flops / 1e9
    return Row(
        group=group,
        model=case.model,
        impl=case.impl,
        library=implementation(case.impl).label,
        mode=case.mode,
        precision=case.precision,
        variant=case.variant,
        batch=case.batch,
        frames=getattr(subject.config, "num_frames", None),
        tokens=subject.tokens,
        params_m=subject.params / 1e6,
        gflop=gflop,
        median_s=median,
        min_s=timing.min,
        max_s=timing.max,
        reps=len(timing.times),
        first_s=timing.first_s,
        items_per_s=case.batch / median,
        gflop_per_s=gflop / median,
        peak_fraction=gflop / median / peak,
    )


def _error_row(group: str, case: Case, error: Exception) -> Row:
    nan = math.nan
    return Row(
        group=group, model=case.model, impl=case.impl, library=implementation(case.impl).label, mode=case.mode,
        precision=case.precision, variant=case.variant, batch=case.batch, frames=case.num_frames, tokens=0,
        params_m=nan, gflop=nan, median_s=nan, min_s=nan, max_s=nan, reps=0, first_s=nan, items_per_s=nan,
        gflop_per_s=nan, peak_fraction=nan, error=f"{type(error).__name__}: {error}",
    )  # fmt: skip


def run_comparison(
    comparison: Comparison, *, peaks: dict[str, float], memory: bool, threads: int | None, timing_kw: dict
) -> list[Row]:
    """Time the cases of ``comparison`` interleaved, then measure each one's memory in a fresh process."""
    subjects = [build_subject(case) for case in comparison.cases]
    kw = dict(timing_kw, long_call_s=math.inf) if any(c.compile for c in comparison.cases) else timing_kw
    timings = time_interleaved([s.step for s in subjects], **kw)
    rows = [
        _timing_row(comparison.group, s, t, peaks[s.case.precision]) for s, t in zip(subjects, timings, strict=True)
    ]
    for row, timing in zip(rows[1:], timings[1:], strict=True):
        if row.impl == "vitzoo":  # a compiled twin, not a reference
            continue
        speedup = paired_speedup(timings[0], timing)
        row.speedup, row.speedup_min, row.speedup_max = speedup.median, speedup.min, speedup.max
    for i, case in enumerate(comparison.cases):
        eager = replace(case, compile=False)
        if case.compile and eager in comparison.cases:
            speedup = paired_speedup(timings[i], timings[comparison.cases.index(eager)])
            rows[i].compile_speedup = speedup.median
            rows[i].compile_speedup_min, rows[i].compile_speedup_max = speedup.min, speedup.max
    del subjects, timings
    gc.collect()
    if memory:
        for case, row in zip(comparison.cases, rows, strict=True):
            if case.compile:
                continue
            result = measure_peak_memory(case, threads=threads)
            row.mem_tensor_mib, row.mem_rss_mib = result.tensor_peak_mib, result.rss_step_mib
    ours = rows[0]
    for row in rows[1:]:
        if ours.mem_tensor_mib is not None and row.mem_tensor_mib:
            row.mem_ratio = ours.mem_tensor_mib / row.mem_tensor_mib
    return rows


def run_suite(
    comparisons: list[Comparison],
    *,
    name: str = "custom",
    memory: bool = True,
    threads: int | None = None,
    target_s: float = 8.0,
    min_reps: int = 3,
    max_reps: int = 10,
    warmup: int = 1,
    peak_sizes: tuple[int, ...] = (2048, 4096),
    progress: bool = True,
    on_comparison: Callable[[SuiteResult], None] | None = None,
) -> SuiteResult:
    """Run every comparison and return the rows with the machine description and matmul peaks.

    ``threads`` sets ``torch.set_num_threads`` here and in the memory subprocesses (default: torch's).
    ``target_s`` is the timed duration aimed at per comparison (all its cases together), within
    ``[min_reps, max_reps]`` repetitions each. A case that fails to build or run is recorded with its
    error (and logged) instead of stopping the suite. ``on_comparison`` (e.g. writing the results so far) is called
    after every comparison with a snapshot of the rows so far (``complete=False``; no end-of-run peak).
    """
    if threads is not None:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    load_start = load_average()
    precisions = {c.precision for comp in comparisons for c in comp.cases}
    peak_gflops = {"fp32": matmul_peak(sizes=peak_sizes)}
    if "bf16" in precisions:
        peak_gflops["bf16"] = matmul_peak(sizes=(512, 1024, *peak_sizes), dtype=torch.bfloat16)  # budgeted
    peaks = {p: max(v.values()) for p, v in peak_gflops.items()}
    log.info("measured matmul peak: %s", {p: f"{v:.1f} GFLOP/s" for p, v in peaks.items()})
    timing_kw = dict(target_s=target_s, min_reps=min_reps, max_reps=max_reps, warmup=warmup)
    rows: list[Row] = []
    samples: list[float] = []
    memory_method = (
        "one step in a fresh process per case: peak of PyTorch-allocated bytes (profiler memory events) and "
        "resident-set (VmHWM) growth; see vitzoo/bench/memory.py"
        if memory
        else "not measured"
    )

    def snapshot(*, complete: bool) -> SuiteResult:
        result = SuiteResult(
            name=name,
            machine=machine_info().as_dict(),
            peak_gflops=peak_gflops,
            peak_gflops_end=matmul_peak(sizes=peak_sizes) if complete else {},
            peak_samples=list(samples),
            load_start=load_start,
            load_end=load_average(),
            wall_s=time.perf_counter() - start,
            memory_method=memory_method,
            rows=[replace(row) for row in rows],
            complete=complete,
        )
        for row in result.rows:  # against the best peak of the whole run: a slow sample means a busy machine
            row.peak_fraction = row.gflop_per_s / result.peak(row.precision)
        return result

    for comparison in tqdm(comparisons, desc="benchmarks", disable=not progress):
        samples.append(matmul_peak(sizes=(2048,), repeats=3)[2048])
        try:
            rows += run_comparison(comparison, peaks=peaks, memory=memory, threads=threads, timing_kw=timing_kw)
        except Exception as error:  # recorded in the table; the remaining comparisons still run
            log.exception("comparison %s failed", comparison)
            rows += [_error_row(comparison.group, case, error) for case in comparison.cases]
        if on_comparison is not None:
            on_comparison(snapshot(complete=False))
    return snapshot(complete=True)
