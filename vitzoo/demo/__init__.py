"""The end-to-end demo: synthetic data, a self-trained image ViT, ViViT fine-tuning, evaluation, export.

``vitzoo demo --ssl`` (``make demo ARGS=--ssl``) runs the self-supervised demo instead (:mod:`vitzoo.demo.ssl`).
"""

from __future__ import annotations

import sys

from vitzoo.demo import run


def main(argv: list[str] | None = None) -> int:
    """``vitzoo demo [--ssl] ...``: the main demo (:func:`vitzoo.demo.run.main`), or with ``--ssl`` the
    self-supervised one (:func:`vitzoo.demo.ssl.main`), each with the remaining arguments."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--ssl" in argv:
        from vitzoo.demo.ssl import main as ssl_main

        return ssl_main([a for a in argv if a != "--ssl"])
    return run.main(argv)


__all__ = ["main"]
