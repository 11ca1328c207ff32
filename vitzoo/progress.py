"""Progress bars fit for a terminal and for logs.

A tqdm bar redraws itself with carriage returns: on a terminal that is one live line, in a log file (CI, ``nohup``,
a cluster job) it is thousands of frames. :func:`progress_bar` draws the bar only when its stream is a terminal;
otherwise it returns a disabled bar (``update``, ``set_postfix`` and ``close`` still work and print nothing), and
the caller's own log lines (one per epoch or log step) are the record.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, Any

from tqdm import tqdm


def is_terminal(stream: IO | None = None) -> bool:
    """Whether ``stream`` (default: ``sys.stderr``, where tqdm draws) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def progress_bar(iterable: Iterable | None = None, *, enabled: bool = True, **options: Any) -> tqdm:
    """A tqdm bar (``options`` are tqdm's: ``total``, ``desc``, ``unit``, ``leave``, ...), drawn only when
    ``enabled`` and tqdm's stream (``options["file"]``, default ``sys.stderr``) is a terminal."""
    shown = enabled and is_terminal(options.get("file"))
    return tqdm(iterable, disable=not shown, **options)
