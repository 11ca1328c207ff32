"""Command line of the benchmarks: ``python -m vitzoo.bench [--suite full] [--compile] [--out benchmarks/results]``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from vitzoo.bench.machine import wait_for_quiet
from vitzoo.bench.presets import SUITES
from vitzoo.bench.report import markdown_report, write_results
from vitzoo.bench.suite import SuiteResult, run_suite, with_compiled
from vitzoo.errors import InputNotFoundError
from vitzoo.schema import check_range

log = logging.getLogger(__name__)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Add the benchmark options to ``parser`` (a new one if None) and return it."""
    parser = parser or argparse.ArgumentParser(prog="vitzoo bench", description=__doc__)
    parser.add_argument("--suite", choices=sorted(SUITES), default="full", help="which suite to run (default: full)")
    parser.add_argument("--out", default="benchmarks/results", help="directory for <suite>.json/.md/.png")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time a torch.compile twin of each comparison's vitzoo case, interleaved with it "
        "(its row's compile speed-up: eager time / compiled time)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the per-case memory subprocesses")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--target-s", type=float, default=8.0, help="timed seconds aimed at per comparison")
    parser.add_argument("--min-reps", type=int, default=3, help="fewest timed repetitions per case")
    parser.add_argument("--max-reps", type=int, default=10, help="most timed repetitions per case")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=None,
        metavar="LOAD",
        help="first wait (up to --wait-timeout s) until the 1-minute load average is below LOAD",
    )
    parser.add_argument("--wait-timeout", type=float, default=1200.0, help="longest wait for a quiet machine, s")
    parser.add_argument(
        "--report-only",
        metavar="JSON",
        default=None,
        help="run nothing: rewrite the markdown and plot in --out from a saved <suite>.json",
    )
    return parser


def check_arguments(args: argparse.Namespace) -> None:
    """One-line :class:`~vitzoo.schema.ConfigError` for numbers out of range, before anything is measured."""
    check_range("--min-reps", args.min_reps, low=1)
    check_range("--max-reps", args.max_reps, low=args.min_reps)
    check_range("--target-s", args.target_s, low=0, low_open=True)
    check_range("--threads", args.threads, low=1, optional=True)
    check_range("--wait-timeout", args.wait_timeout, low=0)
    if args.report_only is not None and not Path(args.report_only).is_file():
        raise InputNotFoundError(f"--report-only {args.report_only}: no such file (a <suite>.json a run wrote)")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen suite, write its JSON, markdown and PNG, print the markdown; return the exit code.

    The exit code is 1 when any case failed to build or run (its error is in the table), else 0.
    ``vitzoo bench ssl [--suite quick|full]`` runs the SimCLR-step comparison with lightly instead
    (:mod:`vitzoo.bench.ssl`).
    """
    if argv and argv[0] == "ssl":
        from vitzoo.bench.ssl import main as ssl_main

        return ssl_main(argv[1:])
    args = build_parser().parse_args(argv)
    check_arguments(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.report_only is not None:
        result = SuiteResult.from_json(Path(args.report_only).read_text())
        paths = write_results(result, args.out)
        log.info("wrote %s", ", ".join(str(p) for p in paths.values()))
        return 0
    if args.wait_quiet is not None:
        wait_for_quiet(threshold=args.wait_quiet, timeout_s=args.wait_timeout)
    comparisons = SUITES[args.suite]()
    if args.compile:
        comparisons = [with_compiled(c) for c in comparisons]
    result = run_suite(
        comparisons,
        name=args.suite,
        memory=not args.no_memory,
        threads=args.threads,
        target_s=args.target_s,
        min_reps=args.min_reps,
        max_reps=args.max_reps,
        on_comparison=lambda partial: write_results(partial, args.out),  # an interrupted run keeps what it measured
    )
    paths = write_results(result, args.out)
    print(markdown_report(result))
    log.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return 1 if any(row.error for row in result.rows) else 0
