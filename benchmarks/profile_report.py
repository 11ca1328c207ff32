"""Op-level profiles of vitzoo and the references at base size; writes ``benchmarks/results/profile.md``.

For each case: achieved fraction of the measured ``torch.mm`` peak, the time in GEMMs, in fused attention
and in everything else, the SDPA kernel that ran, and every copy with the code that caused it. Then the
modules that receive non-contiguous inputs (each such LayerNorm makes a copy) for every vitzoo video model.

Run: ``python benchmarks/profile_report.py [--out benchmarks/results/profile.md] [--quick]``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import vitzoo
from vitzoo.bench.cases import Case
from vitzoo.bench.machine import load_average, machine_info, matmul_peak
from vitzoo.bench.profiling import format_profile, noncontiguous_inputs, profile_case

NO_QKV_BIAS = (("qkv_bias", False),)


def base_cases() -> list[Case]:
    """The profiled configurations: each vitzoo model next to its reference at the same config."""
    return [
        Case("vivit_joint_base_16x2", num_frames=16),
        Case("vivit_joint_base_16x2", impl="hf_vivit", num_frames=16),
        Case("vivit_joint_base_16x2", num_frames=8),
        Case("vivit_joint_base_16x2", impl="hf_vivit", num_frames=8),
        Case("vit_base_patch16_224", batch=8),
        Case("vit_base_patch16_224", impl="timm", batch=8),
        Case("vivit_fact_enc_base_16x2", num_frames=16, overrides=NO_QKV_BIAS),
        Case("vivit_fact_enc_base_16x2", impl="vit_pytorch", num_frames=16, overrides=NO_QKV_BIAS),
        Case("vivit_fact_sa_base_16x2", num_frames=16, overrides=NO_QKV_BIAS),
        Case("vivit_fact_sa_base_16x2", impl="vit_pytorch", num_frames=16, overrides=NO_QKV_BIAS),
        Case("vivit_fact_dot_base_16x2", num_frames=16),
        Case("timesformer_base_patch16_224", num_frames=8),
        Case("timesformer_base_patch16_224", impl="hf_timesformer", num_frames=8),
        Case("vivit_joint_base_16x2", num_frames=8, mode="train"),
    ]


def quick_cases() -> list[Case]:
    """Nano versions of the same (for checking the script)."""
    return [
        Case("vivit_joint_nano_8x2"),
        Case("vivit_joint_nano_8x2", impl="hf_vivit"),
        Case("vivit_fact_sa_nano_8x2", overrides=NO_QKV_BIAS),
        Case("vivit_fact_sa_nano_8x2", impl="vit_pytorch", overrides=NO_QKV_BIAS),
        Case("timesformer_nano_patch8_32"),
        Case("timesformer_nano_patch8_32", impl="hf_timesformer"),
    ]


def layout_table() -> str:
    """Modules fed non-contiguous inputs in one forward, per vitzoo model (nano: the layout is size-independent)."""
    lines = ["| model | batch | module (calls in one forward) |", "|---|---|---|"]
    for name in vitzoo.list_models("*nano*"):
        for batch in (1, 2):
            found = noncontiguous_inputs(Case(name, batch=batch))
            cells = ", ".join(f"`{k}` ({v})" for k, v in sorted(found.items())) or "none"
            lines.append(f"| {name} | {batch} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="benchmarks/results/profile.md")
    parser.add_argument("--quick", action="store_true", help="nano models (seconds)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    load_start = load_average()
    peak = max(matmul_peak().values())
    sections = []
    for case in quick_cases() if args.quick else base_cases():
        logging.info("profiling %s", case)
        sections.append(format_profile(profile_case(case), peak_gflops=peak))
    peak_end = max(matmul_peak().values())
    info = machine_info()
    text = "\n".join(
        [
            "## Op-level profiles",
            "",
            f"{info.summary()}. Measured fp32 `torch.mm` peak {peak:.0f} GFLOP/s at the start, {peak_end:.0f} at "
            f"the end (percentages use the start value). Load average at start "
            f"{' '.join(f'{x:.2f}' for x in load_start)}, at end {' '.join(f'{x:.2f}' for x in load_average())}.",
            "",
            "Self times are per ATen op on the main thread (intra-op parallel regions included); `aten::copy_ < "
            "aten::addmm` is `nn.Linear` broadcasting its bias into the freshly allocated output before the GEMM.",
            "",
            *sections,
            "### Modules fed non-contiguous input (vitzoo)",
            "",
            layout_table(),
            "",
        ]
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
