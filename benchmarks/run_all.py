"""Reproduce the README performance numbers: wait for a quiet machine, run the suite, then the profiles.

Writes ``benchmarks/results/{full.json, full.md, full.png, profile.md}`` (and ``allocator.md`` with
``--experiments``). Each stage runs in a fresh
process. On a 2-core machine the full suite takes about 20 minutes and the profiles a few more.

Run: ``python benchmarks/run_all.py [--suite full|quick] [--load 0.7] [--no-profile] [--experiments]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(*args: str, save: Path | None = None) -> int:
    """Run ``python args...`` from the repository root; with ``save``, stdout goes there too. Returns the exit code."""
    print("+ python", " ".join(args), flush=True)
    proc = subprocess.run([sys.executable, *args], cwd=HERE.parent, check=False, stdout=subprocess.PIPE, text=True)
    print(proc.stdout)
    if proc.returncode:
        print(f"exit code {proc.returncode}", file=sys.stderr)
    if save is not None:
        save.write_text(proc.stdout)
    return proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", default="full", choices=["full", "quick"])
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--load", type=float, default=0.7, help="wait until the 1-minute load is below this")
    parser.add_argument("--wait-timeout", type=float, default=1200.0)
    parser.add_argument("--no-profile", action="store_true", help="skip benchmarks/profile_report.py")
    parser.add_argument("--experiments", action="store_true", help="also run the allocator experiment")
    args = parser.parse_args()
    out = Path(args.out)
    wait = ["--wait-quiet", str(args.load), "--wait-timeout", str(args.wait_timeout)]
    codes = [run("-m", "vitzoo.bench", "--suite", args.suite, "--out", str(out), *wait)]  # 1: a case failed
    if not args.no_profile:
        quick = ["--quick"] if args.suite == "quick" else []
        name = f"profile{'_quick' if quick else ''}.md"
        codes.append(run(str(HERE / "profile_report.py"), "--out", str(out / name), *quick))
    if args.experiments:
        codes.append(run(str(HERE / "allocator_experiment.py"), "--rounds", "3", save=out / "allocator.md"))
    sys.exit(max(codes))


if __name__ == "__main__":
    main()
