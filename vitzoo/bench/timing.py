"""Wall-clock timing of several callables, interleaved so that machine noise hits them alike.

On a shared machine the load changes over seconds; timing model A fully and then model B would
attribute such drift to the models. Here every repetition runs each callable once (the order
alternates between repetitions), so a ratio of medians compares like with like. As in :mod:`timeit`, Python's
garbage collector is paused during each timed call, so a collection triggered by one callable's allocations
is not charged to whichever callable happens to run. :func:`paired_speedup` turns two timings into the
median of their per-repetition ratios with a distribution-free confidence interval.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the first (cold) call, and the timed repetitions after warm-up."""

    first_s: float
    times: tuple[float, ...]

    @property
    def median(self) -> float:
        """Median of the timed repetitions."""
        return statistics.median(self.times)

    @property
    def min(self) -> float:
        """Fastest repetition."""
        return min(self.times)

    @property
    def max(self) -> float:
        """Slowest repetition."""
        return max(self.times)

    @property
    def spread(self) -> float:
        """``(max - min) / median``: the relative range of the repetitions."""
        return (self.max - self.min) / self.median


def timed(fn: Callable[[], None]) -> float:
    """Seconds one call of ``fn`` takes, with the garbage collector paused during the call (as :mod:`timeit`)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        if was_enabled:
            gc.enable()


def choose_reps(estimate_s: float, *, target_s: float, min_reps: int, max_reps: int) -> int:
    """Repetitions so that the timed phase lasts about ``target_s``, clamped to ``[min_reps, max_reps]``."""
    if min_reps < 1 or max_reps < min_reps:
        raise ValueError(f"need 1 <= min_reps <= max_reps, got {min_reps}, {max_reps}")
    wanted = math.ceil(target_s / estimate_s) if estimate_s > 0 else max_reps
    return max(min_reps, min(max_reps, wanted))


def time_interleaved(
    fns: Sequence[Callable[[], None]],
    *,
    warmup: int = 1,
    min_reps: int = 3,
    max_reps: int = 10,
    target_s: float = 10.0,
    long_call_s: float = 2.0,
) -> list[Timing]:
    """Warm up each callable, then time them in alternating order.

    The first call of each (cold: lazy init, compilation) is timed separately and never counted.
    Up to ``warmup`` further untimed calls follow; they stop once a call takes over ``long_call_s``
    (a multi-second eager call is its own warm-up; pass ``math.inf`` to always run them, e.g. after
    ``torch.compile``). The number of repetitions makes the timed phase last about ``target_s`` for
    all callables together, within ``[min_reps, max_reps]``.
    """
    if not fns:
        raise ValueError("nothing to time")
    first = [timed(fn) for fn in fns]
    estimate = []
    for fn, last in zip(fns, first, strict=True):
        for _ in range(warmup):
            if last > long_call_s:
                break
            last = timed(fn)
        estimate.append(last)
    reps = choose_reps(sum(estimate), target_s=target_s, min_reps=min_reps, max_reps=max_reps)
    times: list[list[float]] = [[] for _ in fns]
    for r in range(reps):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            times[i].append(timed(fns[i]))
    return [Timing(first_s=f, times=tuple(t)) for f, t in zip(first, times, strict=True)]


@dataclass(frozen=True)
class Speedup:
    """Per-repetition ratios ``reference time / our time`` (> 1: ours is faster): their median, range, and a
    confidence interval for the median (``ci_low``, ``ci_high``) with its actual ``coverage``
    (:func:`median_interval`)."""

    median: float
    min: float
    max: float
    ci_low: float
    ci_high: float
    coverage: float


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Distribution-free confidence interval for the median of ``values``: ``(low, high, coverage)``.

    The order statistics ``x_(j) <= x_(n + 1 - j)`` (1-based) bracket the population median unless at least
    ``n + 1 - j`` of ``n`` samples fall on one side of it, so the coverage is ``1 - 2 P(B <= j - 1)`` with
    ``B ~ Binomial(n, 1/2)``, for any continuous distribution. ``j`` is the largest index whose coverage is at
    least ``confidence``; when no ``j`` reaches it (fewer than 6 values at 95%), the range ``[min, max]`` is
    returned with its actual, lower coverage.
    """
    if not values:
        raise ValueError("no values")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    ordered, n = sorted(values), len(values)

    def coverage(j: int) -> float:
        return 1 - 2 * sum(math.comb(n, i) for i in range(j)) / 2**n

    j = 1
    while j + 1 <= (n + 1) // 2 and coverage(j + 1) >= confidence:
        j += 1
    return ordered[j - 1], ordered[n - j], coverage(j)


def paired_speedup(ours: Timing, reference: Timing, confidence: float = 0.95) -> Speedup:
    """Speed-up of ``ours`` over ``reference`` from timings of :func:`time_interleaved` (paired repetitions)."""
    if len(ours.times) != len(reference.times):
        raise ValueError(f"unpaired timings: {len(ours.times)} and {len(reference.times)} repetitions")
    ratios = [ref / mine for mine, ref in zip(ours.times, reference.times, strict=True)]
    low, high, coverage = median_interval(ratios, confidence)
    return Speedup(statistics.median(ratios), min(ratios), max(ratios), low, high, coverage)
