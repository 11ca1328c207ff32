"""How much of a CPU step is page-faulting freshly allocated memory? Default glibc malloc vs a retaining one.

PyTorch's CPU allocator is plain ``malloc``/``free``. glibc serves large blocks with ``mmap`` and gives them
back on ``free`` (and trims the heap top), so every step faults its activations in again, page by page,
and the first op to touch an output (often ``aten::copy_`` inside ``aten::addmm`` broadcasting the bias,
or an element-wise op) pays for it. With ``GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=...``
freed memory stays in the heap and is reused. Each setting runs in its own process (the tunables are
read at start-up); the numbers are the median of ``--reps`` warm steps and the page faults of one.

Run: ``python benchmarks/allocator_experiment.py [--model vivit_joint_base_16x2] [--frames 8] [--impl vitzoo]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

SETTINGS = {
    "glibc default": None,
    "glibc, no mmap, no trim": "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736",
}

CHILD = """
import json, resource, statistics, sys, time
from vitzoo.bench.cases import Case, build_subject
case = Case.from_json(sys.argv[1])
subject = build_subject(case)
subject.step(); subject.step()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
times = []
for _ in range(int(sys.argv[2])):
    start = time.perf_counter(); subject.step(); times.append(time.perf_counter() - start)
    if len(times) == 1:
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
print(json.dumps(dict(median=statistics.median(times), min=min(times), max=max(times), faults=faults)))
"""


def main() -> None:
    from vitzoo.bench.cases import Case

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="vivit_joint_base_16x2")
    parser.add_argument("--impl", default="vitzoo")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--mode", default="infer")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2, help="alternate the settings this many times")
    args = parser.parse_args()
    case = Case(args.model, impl=args.impl, num_frames=args.frames, batch=args.batch, mode=args.mode)
    print(f"{case}\n\n| allocator | round | median s (min-max) | minor page faults / step |\n|---|---|---|---|")
    for r in range(args.rounds):
        for label, tunables in SETTINGS.items():
            env = dict(os.environ)
            env.pop("GLIBC_TUNABLES", None)
            if tunables:
                env["GLIBC_TUNABLES"] = tunables
            proc = subprocess.run(
                [sys.executable, "-c", CHILD, case.to_json(), str(args.reps)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            print(
                f"| {label} | {r} | {res['median']:.3f} ({res['min']:.3f}-{res['max']:.3f}) | {res['faults']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
