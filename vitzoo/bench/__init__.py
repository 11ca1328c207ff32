"""Benchmarks of vitzoo against reference implementations (timm, transformers, vit-pytorch).

>>> from vitzoo.bench import run_suite, quick_suite
>>> result = run_suite(quick_suite(), memory=False)  # doctest: +SKIP

``main(argv)`` is the command line (``python -m vitzoo.bench``, ``vitzoo bench``).
"""

from vitzoo.bench.cases import Case, build_subject
from vitzoo.bench.cli import main
from vitzoo.bench.flops import Flops, model_flops
from vitzoo.bench.presets import SUITES, full_suite, quick_suite
from vitzoo.bench.suite import Comparison, Row, SuiteResult, compare, run_suite

__all__ = [
    "SUITES",
    "Case",
    "Comparison",
    "Flops",
    "Row",
    "SuiteResult",
    "build_subject",
    "compare",
    "full_suite",
    "main",
    "model_flops",
    "quick_suite",
    "run_suite",
]
