"""Op-level profile of one step: where the time goes, which attention kernel runs, which copies happen.

:func:`profile_case` runs a case once under ``torch.profiler`` (with Python stacks, so every copy is
traced to the source line that caused it) and summarises:

- self time per ATen op, split into matrix products (GEMM, convolution, fused attention) and the rest;
- the SDPA kernels called (on CPU the fused one is ``aten::_scaled_dot_product_flash_attention_for_cpu``;
  ``aten::_scaled_dot_product_attention_math`` or a ``bmm`` + ``softmax`` pair means a materialised
  attention matrix);
- every ``aten::copy_`` with its caller chain (``clone < contiguous < native_layer_norm``, ...) and source;
- minor page faults of one (unprofiled) step, i.e. freshly allocated memory touched for the first time.
"""

from __future__ import annotations

import resource
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn
from torch.profiler import ProfilerActivity, profile

from vitzoo.bench.cases import Case, build_subject
from vitzoo.bench.flops import model_flops

GEMM_OPS = frozenset({"aten::addmm", "aten::mm", "aten::bmm", "aten::baddbmm", "aten::mkldnn_convolution"})
FUSED_ATTENTION_OPS = frozenset(
    {
        "aten::_scaled_dot_product_flash_attention_for_cpu",
        "aten::_scaled_dot_product_flash_attention_for_cpu_backward",
    }
)
MATERIALISED_ATTENTION_OPS = frozenset({"aten::_scaled_dot_product_attention_math", "aten::_softmax"})


@dataclass
class OpProfile:
    """Summary of one profiled step (times in seconds)."""

    case: Case
    wall_s: float  # the profiled step
    unprofiled_s: float  # a step without the profiler
    page_faults: int  # minor faults of the unprofiled step
    self_s: dict[str, float] = field(default_factory=dict)  # ATen op -> self time
    calls: dict[str, int] = field(default_factory=dict)
    attention_kernels: dict[str, int] = field(default_factory=dict)
    copies: dict[str, int] = field(default_factory=dict)  # "aten::copy_ < caller < ... @ source" -> calls
    depth: int = 1
    flops: int = 0
    attention_flops: int = 0

    @property
    def total_self_s(self) -> float:
        """Sum of the ATen ops' self time (the rest of the wall time is Python and dispatch overhead)."""
        return sum(self.self_s.values())

    def time_in(self, ops: frozenset[str]) -> float:
        """Self time of the given ops."""
        return sum(t for name, t in self.self_s.items() if name in ops)

    @property
    def copy_calls(self) -> int:
        """Data-moving copies (``aten::copy_``) in the step."""
        return self.calls.get("aten::copy_", 0)


def _is_python_frame(name: str) -> bool:
    return ".py(" in name


SKIPPED_FRAMES = ("torch/", "einops/", "vitzoo/bench/")
REPO_ROOT = str(Path(__file__).resolve().parents[2]) + "/"


def _frame_path(name: str) -> str:
    """A profiler Python-frame name relative to site-packages or to this repository."""
    return name.split("site-packages/")[-1].removeprefix(REPO_ROOT)


def _source(event) -> str:
    """The innermost model-code Python frame (not torch, einops or this package) that called ``event``."""
    parent = event.cpu_parent
    while parent is not None:
        path = _frame_path(parent.name)
        if _is_python_frame(path) and not path.startswith(SKIPPED_FRAMES):
            return path
        parent = parent.cpu_parent
    return "?"


def _chain(event, levels: int = 2) -> str:
    """``op < caller < caller`` over ATen ops only (Python frames skipped)."""
    names, parent = [event.name], event.cpu_parent
    while parent is not None and len(names) <= levels:
        if parent.name.startswith("aten::"):
            names.append(parent.name)
        parent = parent.cpu_parent
    return " < ".join(names)


def profile_case(case: Case, *, warmup: int = 1) -> OpProfile:
    """Profile one step of ``case`` after ``warmup`` steps (see the module docstring)."""
    subject = build_subject(case)
    for _ in range(warmup):
        subject.step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    subject.step()
    unprofiled = time.perf_counter() - start
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    with profile(activities=[ProfilerActivity.CPU], with_stack=True) as prof:
        start = time.perf_counter()
        subject.step()
        wall = time.perf_counter() - start
    self_s: dict[str, float] = defaultdict(float)
    calls: Counter[str] = Counter()
    attention: Counter[str] = Counter()
    copies: Counter[str] = Counter()
    for event in prof.events():
        if not event.name.startswith("aten::"):
            continue  # Python frames (with_stack) and profiler bookkeeping
        self_s[event.name] += event.self_cpu_time_total / 1e6
        calls[event.name] += 1
        if "scaled_dot_product" in event.name or event.name in MATERIALISED_ATTENTION_OPS:
            attention[event.name] += 1
        if event.name == "aten::copy_":  # the data movement itself; its callers say why (clone, contiguous, ...)
            copies[f"{_chain(event, levels=3)} @ {_source(event)}"] += 1
    cfg = subject.config
    flops = model_flops(cfg, batch=case.batch)
    return OpProfile(
        case=case,
        wall_s=wall,
        unprofiled_s=unprofiled,
        page_faults=faults,
        self_s=dict(self_s),
        calls=dict(calls),
        attention_kernels=dict(attention),
        copies=dict(copies),
        depth=getattr(cfg, "depth", None) or sum(getattr(cfg, "depths", (1,))),  # hierarchical: blocks of all stages
        flops=subject.flops,
        attention_flops=flops.attention if case.mode == "infer" else 3 * flops.attention,
    )


def format_profile(prof: OpProfile, *, peak_gflops: float, top: int = 12) -> str:
    """Markdown summary: efficiency against the matmul peak, top ops, attention kernels, copies per block."""
    c = prof.case
    total = prof.total_self_s
    gemm, fused = prof.time_in(GEMM_OPS), prof.time_in(FUSED_ATTENTION_OPS)
    other = total - gemm - fused
    achieved = prof.flops / prof.unprofiled_s / 1e9
    non_attn = prof.flops - prof.attention_flops
    lines = [
        f"#### {c.model} ({c.impl}, {c.mode}, {c.variant}, batch {c.batch}"
        + (f", {c.num_frames} frames)" if c.num_frames else ")"),
        "",
        f"- step {prof.unprofiled_s:.3f} s unprofiled ({prof.wall_s:.3f} s profiled); {prof.flops / 1e9:.1f} GFLOP "
        f"-> {achieved:.1f} GFLOP/s = **{100 * achieved / peak_gflops:.0f}% of the {peak_gflops:.0f} GFLOP/s "
        f"matmul peak**",
        f"- GEMM + convolution: {gemm:.3f} s ({100 * gemm / total:.0f}% of op time) for "
        f"{non_attn / 1e9:.1f} GFLOP -> {non_attn / gemm / 1e9 if gemm else 0:.1f} GFLOP/s "
        f"({100 * non_attn / gemm / 1e9 / peak_gflops if gemm else 0:.0f}% of peak)",
        f"- fused attention: {fused:.3f} s ({100 * fused / total:.0f}%) for {prof.attention_flops / 1e9:.1f} GFLOP"
        + (f" -> {prof.attention_flops / fused / 1e9:.1f} GFLOP/s" if fused else ""),
        f"- other ATen ops: {other:.3f} s ({100 * other / total:.0f}%); outside ATen ops (Python, dispatch, "
        f"profiler): {prof.wall_s - total:.3f} s; minor page faults in one step: "
        f"{prof.page_faults} ({prof.page_faults * 4 / 1024:.0f} MiB first-touched)",
        f"- attention kernels: {', '.join(f'`{k}` x{v}' for k, v in sorted(prof.attention_kernels.items())) or 'none'}",
        "",
        "| op | calls | self s | % |",
        "|---|---|---|---|",
    ]
    for name, t in sorted(prof.self_s.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"| `{name}` | {prof.calls[name]} | {t:.3f} | {100 * t / total:.1f} |")
    lines += ["", f"Copies ({prof.copy_calls} `aten::copy_` in the step, {prof.depth} blocks):", ""]
    lines += ["| `aten::copy_` < callers @ source | calls | per block |", "|---|---|---|"]
    for key, n in sorted(prof.copies.items(), key=lambda kv: -kv[1]):
        lines.append(f"| `{key}` | {n} | {n / prof.depth:.2f} |")
    return "\n".join(lines) + "\n"


def noncontiguous_inputs(case: Case) -> dict[str, int]:
    """Module names (numbers collapsed to ``*``) whose input is not contiguous -> calls, in one step of ``case``.

    ``LayerNorm`` copies such an input before normalising (an ``aten::contiguous`` in the profile) and a
    ``Linear`` on a non-contiguous 3-D input may too; these are the regrouping copies a layout change avoids.
    """
    subject = build_subject(case)
    found: Counter[str] = Counter()
    handles = []
    for name, module in subject.model.named_modules():
        if isinstance(module, nn.LayerNorm | nn.Linear):
            key = ".".join("*" if part.isdigit() else part for part in name.split("."))

            def hook(_module, args, key=key) -> None:
                if not args[0].is_contiguous():
                    found[key] += 1

            handles.append(module.register_forward_pre_hook(hook))
    try:
        subject.step()
    finally:
        for handle in handles:
            handle.remove()
    return dict(found)
