"""The machine a benchmark ran on: CPU, threads, library versions, load, and its measured matmul peak."""

from __future__ import annotations

import logging
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import torch

log = logging.getLogger(__name__)

LIBRARIES = ("torch", "timm", "transformers", "vit-pytorch", "einops")


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cpu_flags() -> set[str]:
    """CPU feature flags from ``/proc/cpuinfo`` (empty where unavailable)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return set()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def native_bf16(flags: set[str] | None = None) -> bool:
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX-BF16 in ``flags``, by default this machine's);
    without it torch's bf16 CPU kernels emulate bf16, several times slower than fp32."""
    flags = cpu_flags() if flags is None else flags
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def load_average() -> tuple[float, float, float]:
    """The 1-, 5- and 15-minute load averages."""
    return os.getloadavg()


def wait_for_quiet(*, threshold: float = 0.7, interval_s: float = 30.0, timeout_s: float = 1200.0) -> bool:
    """Poll the 1-minute load average until it is below ``threshold``; False if ``timeout_s`` passed first."""
    deadline = time.monotonic() + timeout_s
    while True:
        load = load_average()[0]
        if load < threshold:
            log.info("1-minute load %.2f < %.2f: starting", load, threshold)
            return True
        if time.monotonic() + interval_s > deadline:
            log.warning("load still %.2f after %.0f s; running anyway", load, timeout_s)
            return False
        log.info("1-minute load %.2f >= %.2f; waiting %.0f s", load, threshold, interval_s)
        time.sleep(interval_s)


def matmul_peak(
    *,
    sizes: tuple[int, ...] = (2048, 4096),
    dtype: torch.dtype = torch.float32,
    repeats: int = 5,
    budget_s: float = 20.0,
) -> dict[int, float]:
    """Best achieved GFLOP/s of a square ``torch.mm`` per size (``2 n^3`` FLOPs, best of ``repeats``).

    ``budget_s`` bounds the time spent per size: fewer repeats when one product is slow, and a larger size is
    skipped when its product, predicted from the last one (``n^3``), would take more than a quarter of it (bf16 on
    a CPU without native bf16 runs at about 1 GFLOP/s or less: one 4096^2 product would take minutes). The
    smallest size is always measured.
    """
    result: dict[int, float] = {}
    last = None  # (size, seconds of its warm-up product)
    for n in sorted(sizes):
        if last is not None and last[1] * (n / last[0]) ** 3 > budget_s / 4:
            break  # this size and the larger ones would take too long
        gen = torch.Generator().manual_seed(n)
        a, b = torch.randn(n, n, generator=gen).to(dtype), torch.randn(n, n, generator=gen).to(dtype)
        out = torch.empty(n, n, dtype=dtype)
        start = time.perf_counter()
        torch.mm(a, b, out=out)  # warm-up (MKL / oneDNN initialisation, page faults of `out`)
        first = time.perf_counter() - start
        best = first
        for _ in range(max(1, min(repeats, int(budget_s / max(first, 1e-9))))):
            start = time.perf_counter()
            torch.mm(a, b, out=out)
            best = min(best, time.perf_counter() - start)
        result[n] = 2 * n**3 / best / 1e9
        last = (n, first)
    return result


@dataclass
class MachineInfo:
    """A description of the benchmark machine, stored with the results."""

    cpu: str
    logical_cpus: int
    torch_threads: int
    torch_interop_threads: int
    avx512: bool
    avx512_bf16: bool
    python: str
    libraries: dict[str, str] = field(default_factory=dict)
    torch_build: str = ""

    def as_dict(self) -> dict:
        """Plain-dict form (JSON)."""
        return asdict(self)

    def summary(self) -> str:
        """One line for a README: CPU, cores, threads, torch version."""
        isa = "AVX-512" + (" + AVX512-BF16" if self.avx512_bf16 else "") if self.avx512 else "no AVX-512"
        return (
            f"{self.cpu} ({self.logical_cpus} logical CPUs, {isa}), torch {self.libraries.get('torch', '?')} "
            f"with {self.torch_threads} intra-op threads"
        )


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> MachineInfo:
    """Collect the :class:`MachineInfo` of this process."""
    flags = cpu_flags()
    blas = "MKL" if torch.backends.mkl.is_available() else "no MKL"
    onednn = "oneDNN" if torch.backends.mkldnn.is_available() else "no oneDNN"
    return MachineInfo(
        cpu=cpu_model(),
        logical_cpus=os.cpu_count() or 0,
        torch_threads=torch.get_num_threads(),
        torch_interop_threads=torch.get_num_interop_threads(),
        avx512="avx512f" in flags,
        avx512_bf16="avx512_bf16" in flags,
        python=platform.python_version(),
        libraries={lib: _version(lib) for lib in LIBRARIES},
        torch_build=f"{blas}, {onednn}, CPU capability {torch.backends.cpu.get_cpu_capability()}",
    )
