"""How the demos share a small machine's cores: torch threads per phase, and independent runs side by side.

On 2 cores the default (torch uses every core) is not the fastest for the demo's micro models:

* **Pre-training** decodes and augments two views per video in a loader worker that stays busy, so the model's
  threads and the worker contend for the cores. With ``cores - workers`` torch threads (1 on 2 cores), in the
  whole demo VICReg took 153 s instead of 165 and VideoMAE 79 instead of 116; SimCLR took the same time (284 s
  against 285) with 22% less CPU time: its one thread is then the bottleneck.
* **Fine-tuning** a micro model on 16-clip batches leaves a core half idle (small matrix products, a mostly idle
  worker): one run with 1 thread was slower (31.4 -> 34.4 s), but two runs side by side with 1 thread each took
  45 s for both, against 63 s one after the other with 2 threads.
* Two **pre-training** runs side by side were about 3x slower each: two busy workers and two models on two cores.

Timings of 2026-12-07 on the idle 2-core machine (runs of a few epochs vary by about 15% between runs there);
docs/ssl.md has the whole demo's.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

import torch

from vitzoo.progress import progress_bar

log = logging.getLogger(__name__)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask; ``os.cpu_count()`` where the platform has none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@contextmanager
def torch_threads(num_threads: int) -> Iterator[None]:
    """Run the block with ``num_threads`` intra-op threads (``torch.set_num_threads``), then restore the count."""
    if num_threads < 1:
        raise ValueError(f"torch_threads: num_threads={num_threads}; use 1 or more")
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class _NoTerminal:
    """A stream that says it is no terminal: in a job process, progress bars give way to log lines (the bars of
    two processes would overwrite each other on one terminal), see :mod:`vitzoo.progress`."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _start_job_process(num_threads: int, log_level: int) -> None:
    torch.set_num_threads(num_threads)
    sys.stderr = _NoTerminal(sys.stderr)
    logging.basicConfig(level=log_level, format="%(message)s")


def _labelled(job: tuple[str, Callable[..., Any], dict[str, Any]]) -> Any:
    label, fn, kwargs = job
    formatter = logging.Formatter(f"[{label}] %(message)s")  # two runs' lines interleave: say whose each is
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
    return fn(**kwargs)


def run_jobs(
    jobs: Sequence[tuple[str, Callable[..., Any], dict[str, Any]]], *, processes: int, desc: str = "runs"
) -> list[Any]:
    """``fn(**kwargs)`` of every ``(label, fn, kwargs)`` job, in order; ``processes`` at a time.

    One process runs the jobs here, one after the other. More run in fresh (spawned) processes, each with
    ``usable_cpus() // processes`` torch threads, log lines instead of progress bars, each line prefixed with the
    job's label, and a progress bar over the jobs here. ``fn`` must be importable (a module-level function) and
    its arguments picklable. The first job that raises re-raises here once the running jobs have ended; no job
    starts after that.
    """
    if processes < 1:
        raise ValueError(f"run_jobs: processes={processes}; use 1 or more")
    if processes == 1 or len(jobs) <= 1:
        return [fn(**kwargs) for _, fn, kwargs in jobs]
    threads = max(1, usable_cpus() // processes)
    log.info("%d %s, %d at a time with %d torch thread(s) each", len(jobs), desc, processes, threads)
    results: list[Any] = [None] * len(jobs)
    waiting = iter(enumerate(jobs))
    with (
        ProcessPoolExecutor(
            max_workers=processes,
            mp_context=multiprocessing.get_context("spawn"),  # no fork of a process whose OpenMP threads have run
            initializer=_start_job_process,
            initargs=(threads, logging.getLogger().getEffectiveLevel()),
        ) as pool,
        progress_bar(total=len(jobs), desc=desc) as bar,
    ):
        running: dict[Future, int] = {}

        def start_next() -> None:
            for i, job in itertools.islice(waiting, 1):
                running[pool.submit(_labelled, job)] = i

        for _ in range(processes):
            start_next()
        # only `processes` jobs are ever submitted: after an error or Ctrl-C (which the running jobs get too, and
        # stop at a checkpoint) leaving the block waits for them, and no other job starts
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                results[running.pop(future)] = future.result()
                bar.update()
                start_next()
    return results
