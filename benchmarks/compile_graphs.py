"""Graph breaks and recompilations of every family under ``torch.compile``: writes
benchmarks/results/compile_graphs.{json,md} (shown in docs/performance.md).

For one small model per family (the registered ``nano`` / ``micro`` size) it reports:

1. ``torch._dynamo.explain`` of an inference call and of a training forward: graphs, graph breaks and their reasons;
2. recompilations, counted with a counting backend (dynamo's frames compiled, no inductor: the count does not
   depend on the backend): a second batch size, then a third (dynamo marks the batch axis dynamic on the first
   change, so the third must not recompile); with ``dynamic_size=True``, a second and third input size (frames and
   pixels; the Swins compiled per size, ``dynamic=False``); eval after train mode.

Run: ``python benchmarks/compile_graphs.py [--families vivit_joint vit ...]`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch._dynamo
from torch._dynamo.testing import CompileCounter

import vitzoo
from vitzoo.durable import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FAMILIES = {
    "vivit_joint": "vivit_joint_nano_8x2",
    "vivit_fact_enc": "vivit_fact_enc_nano_8x2",
    "vivit_fact_sa": "vivit_fact_sa_nano_8x2",
    "vivit_fact_dot": "vivit_fact_dot_nano_8x2",
    "vtn": "vtn_nano_patch8_32",
    "timesformer": "timesformer_nano_patch8_32",
    "frame_avg": "frame_avg_nano_patch8_32",
    "mvitv1": "mvitv1_nano_4x2",
    "mvitv2": "mvitv2_nano_4x2",
    "video_swin": "video_swin_nano_4x2",
    "swin": "swin_nano_patch4_window4_32",
    "vit": "vit_nano_patch8_32",
}


def _input(model: torch.nn.Module, batch: int, scale: int = 1) -> torch.Tensor:
    """A random batch; ``scale`` multiplies the frames (video) and pixels by the model's size multiple."""
    shape = list(model.input_shape)
    if scale > 1:
        multiple = model.size_multiple()
        for i, m in zip(range(len(shape) - len(multiple), len(shape)), multiple, strict=True):
            shape[i] += (scale - 1) * m
    return torch.randn(batch, *shape)


def _explain(model: torch.nn.Module, x: torch.Tensor) -> dict:
    torch._dynamo.reset()
    out = torch._dynamo.explain(model)(x)
    reasons = sorted({f"{r.reason.splitlines()[0]} ({r.user_stack[-1].filename.split('vitzoo/')[-1]}:"
                      f"{r.user_stack[-1].lineno})" if r.user_stack else r.reason.splitlines()[0]
                      for r in out.break_reasons})  # fmt: skip
    return {"graphs": out.graph_count, "graph_breaks": out.graph_break_count, "reasons": reasons}


def _frames(calls) -> list[int]:
    """Frames compiled after each call of ``calls`` (a list of thunks run under one counting backend)."""
    torch._dynamo.reset()
    counts = []
    for call in calls:
        call()
        counts.append(COUNTER.frame_count)
    return counts


COUNTER = CompileCounter()
# Compiled with dynamic=False for the size column: dynamo's recompile of the Swins with dynamic sizes (window padding
# and shifted-window masks over symbolic sizes) did not finish in 17 minutes even with the counting backend, so
# docs/performance.md advises one static graph per size for them, and this reports that
STATIC_PER_SIZE = {"video_swin_nano_4x2", "swin_nano_patch4_window4_32"}


def family_report(name: str) -> dict:
    """The explain output and recompilation counts of the registered model ``name``."""
    torch.manual_seed(0)
    model = vitzoo.create(name, num_classes=3).eval()
    row: dict = {"model": name}
    with torch.no_grad():
        row["infer"] = _explain(model, _input(model, 2))
    model.train()
    row["train"] = _explain(model, _input(model, 2))
    model.eval()

    COUNTER.clear()
    compiled = torch.compile(model, backend=COUNTER)
    with torch.no_grad():
        batches = _frames([lambda b=b: compiled(_input(model, b)) for b in (2, 3, 5)])
    row["frames_batch_2_3_5"] = batches

    dyn = vitzoo.create(name, num_classes=3, dynamic_size=True).eval()
    COUNTER.clear()
    compiled = torch.compile(dyn, backend=COUNTER, dynamic=False if name in STATIC_PER_SIZE else None)
    with torch.no_grad():
        row["frames_size_1_2_3"] = _frames([lambda s=s: compiled(_input(dyn, 2, s)) for s in (1, 2, 3)])

    COUNTER.clear()
    compiled = torch.compile(model, backend=COUNTER)

    def train_call() -> None:
        model.train()
        compiled(_input(model, 2)).sum().backward()

    def eval_call() -> None:
        model.eval()
        with torch.no_grad():
            compiled(_input(model, 2))

    row["frames_train_eval_train"] = _frames([train_call, eval_call, train_call])
    model.eval()
    return row


def markdown(rows: list[dict]) -> str:
    """The report as a markdown table plus the distinct break reasons."""
    lines = [
        "| family | model | graphs / breaks, inference | graphs / breaks, train forward "
        "| frames compiled: batch 2, 3, 5 | frames: size x1, x2, x3 (dynamic_size) | frames: train, eval, train |",
        "|---|---|---|---|---|---|---|",
    ]
    for family, row in rows:
        inf, tr = row["infer"], row["train"]
        static = " (static)" if row["model"] in STATIC_PER_SIZE else ""
        lines.append(
            f"| {family} | {row['model']} | {inf['graphs']} / {inf['graph_breaks']} | {tr['graphs']} / "
            f"{tr['graph_breaks']} | {', '.join(map(str, row['frames_batch_2_3_5']))} | "
            f"{', '.join(map(str, row['frames_size_1_2_3']))}{static} | "
            f"{', '.join(map(str, row['frames_train_eval_train']))} |"
        )
    reasons = sorted({r for _, row in rows for part in ("infer", "train") for r in row[part]["reasons"]})
    lines += ["", "Graph-break reasons:" if reasons else "No graph breaks.", *[f"- {r}" for r in reasons]]
    if any(row["model"] in STATIC_PER_SIZE for _, row in rows):
        lines += [
            "",
            "(static): compiled with `dynamic=False`, one graph per size, as docs/performance.md advises "
            "for the Swins.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the report for the chosen families and write the JSON and markdown files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="*", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--out", default=str(RESULTS / "compile_graphs"), help="output path without suffix")
    args = parser.parse_args(argv)
    torch._dynamo.config.cache_size_limit = 64
    rows = []
    for family in args.families:
        row = family_report(FAMILIES[family])
        rows.append((family, row))
        print(family, json.dumps(row), flush=True)
    out = Path(args.out)
    write_text_atomic(out.with_suffix(".json"), json.dumps({f: r for f, r in rows}, indent=1))
    write_text_atomic(out.with_suffix(".md"), markdown(rows))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
