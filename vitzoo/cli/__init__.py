"""The ``vitzoo`` command line (``vitzoo.cli.main:main``)."""
