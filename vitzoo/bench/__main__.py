"""``python -m vitzoo.bench``: run a benchmark suite (see ``vitzoo.bench.cli``)."""

import sys

from vitzoo.bench.cli import main

if __name__ == "__main__":  # guarded: the memory fork server's children import the main module
    sys.exit(main())
