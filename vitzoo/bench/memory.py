"""Peak CPU memory of one step, measured in a fresh process, two ways.

``tracemalloc`` does not see PyTorch's allocations and a long-lived process keeps freed memory in its
allocator, so each measurement runs in a new process, forked from a fork server that has imported the
libraries but never run a model (``multiprocessing`` "forkserver"; ``python -m vitzoo.bench.memory
CASE_JSON`` does the same from a shell). There:

1. build the case (model, input, optimizer); free what the allocator holds (``gc.collect``, glibc
   ``malloc_trim(0)``); read the resident set ``VmRSS`` and reset its high-water mark ``VmHWM``
   (``/proc/self/clear_refs``: 5);
2. run one step under ``torch.profiler`` with ``profile_memory=True`` and read ``VmHWM``.

Two numbers come out:

- **tensor peak**: the highest running total of bytes the PyTorch CPU allocator handed out during the
  step (the profiler's ``[memory]`` events: every allocation and free, in order). Activations, saved
  tensors, workspaces of ATen ops and, in training, gradients (SGD keeps no state). Deterministic: it
  depends only on the model code, not on the allocator. This is the number the tables compare.
- **RSS growth**: ``VmHWM - VmRSS`` before the step: what the OS sees, including glibc's
  fragmentation and buffers libraries allocate outside PyTorch's allocator (oneDNN primitives, BLAS
  workspaces, created lazily in this first step, ~25 MiB at base size).

There is no warm-up step: after one, glibc's heap layout (its mmap threshold adapts to freed blocks)
makes the RSS growth of the next step vary by tens of MiB between identical runs. Linux only.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import itertools
import json
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from vitzoo.bench.cases import Case, build_subject

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
MIB = 2**20


@dataclass(frozen=True)
class MemoryResult:
    """Memory of one step of a case, in MiB."""

    tensor_peak_mib: float  # peak of live bytes allocated by PyTorch during the step
    baseline_mib: float  # resident set before the step (interpreter, libraries, model, input)
    rss_peak_mib: float  # resident-set high-water mark during the step
    params_mib: float

    @property
    def rss_step_mib(self) -> float:
        """Growth of the resident set during the step."""
        return self.rss_peak_mib - self.baseline_mib


def _status_kib(field: str) -> int:
    for line in STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found in {STATUS}")


def _release_free_memory() -> None:
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: freed memory may stay resident (higher baseline)
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def peak_allocated_bytes(prof: profile) -> int:
    """Highest running total of the allocations and frees recorded by a ``profile_memory=True`` profile."""
    events = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"), key=lambda e: e.start_ns()
    )
    return max(itertools.accumulate((e.nbytes() for e in events), initial=0))


def _build(case):
    """The subject of a model case (:func:`~vitzoo.bench.cases.build_subject`), or of a case that builds itself
    (``case.build()``, e.g. :class:`vitzoo.bench.ssl.SSLCase`); it has ``step()`` and ``model``."""
    return case.build() if hasattr(case, "build") else build_subject(case)


def measure_in_this_process(case: Case, *, threads: int | None = None) -> MemoryResult:
    """Steps 1-2 of the module docstring, in the current process (call it in a fresh one)."""
    if not STATUS.exists() or not CLEAR_REFS.exists():
        raise RuntimeError("peak-memory measurement needs Linux /proc/self/status and /proc/self/clear_refs")
    if threads is not None:
        torch.set_num_threads(threads)
    subject = _build(case)
    _release_free_memory()
    baseline = _status_kib("VmRSS")
    CLEAR_REFS.write_text("5")
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        subject.step()
    rss_peak = _status_kib("VmHWM")
    params = sum(p.numel() * p.element_size() for p in subject.model.parameters())
    return MemoryResult(
        tensor_peak_mib=peak_allocated_bytes(prof) / MIB,
        baseline_mib=baseline / 1024,
        rss_peak_mib=rss_peak / 1024,
        params_mib=params / MIB,
    )


# Imported once by the fork server, so that each measured process starts with them loaded.
PRELOAD = (
    "vitzoo.bench.memory",
    "timm.models.vision_transformer",
    "transformers.models.vivit.modeling_vivit",
    "transformers.models.timesformer.modeling_timesformer",
    "vit_pytorch.vivit",
)
_CONTEXT: multiprocessing.context.ForkServerContext | None = None


def _fork_server() -> multiprocessing.context.ForkServerContext:
    """A fork server that has imported :data:`PRELOAD` but never run a model (no allocator or thread-pool state)."""
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(list(PRELOAD))
    return _CONTEXT


def _measure_to_dict(case_json: str, threads: int | None, case_type: type = Case) -> dict:
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # this process only: no libkineto start/stop lines on stderr
    return asdict(measure_in_this_process(case_type.from_json(case_json), threads=threads))


def measure_peak_memory(case: Case, *, threads: int | None = None, timeout_s: float = 900.0) -> MemoryResult:
    """Run :func:`measure_in_this_process` for ``case`` in a fresh process (forked from a clean fork server).

    The calling program's main module must be import-safe (``if __name__ == "__main__":``): the fork
    server's children import it, as with any ``multiprocessing`` start method but "fork".
    """
    if getattr(case, "compile", False):
        raise ValueError("memory is not measured for torch.compile cases (it would recompile in the subprocess)")
    with ProcessPoolExecutor(max_workers=1, mp_context=_fork_server(), max_tasks_per_child=1) as pool:
        future = pool.submit(_measure_to_dict, case.to_json(), threads, type(case))
        return MemoryResult(**future.result(timeout=timeout_s))


def _main(argv: list[str]) -> None:
    threads = int(argv[argv.index("--threads") + 1]) if "--threads" in argv else None
    print(json.dumps(_measure_to_dict(argv[0], threads)))


if __name__ == "__main__":
    _main(sys.argv[1:])
