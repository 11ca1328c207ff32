"""Graceful stop on Ctrl-C / SIGTERM: finish the current update, write a checkpoint, return.

Inside :class:`GracefulStop`, the first SIGINT or SIGTERM only sets :attr:`GracefulStop.requested`; the
training loop checks it after every update, saves and stops. A second SIGINT raises ``KeyboardInterrupt``
at once (the last checkpoint written stays valid: every file is replaced atomically). Handlers can only
be installed from the main thread; elsewhere the context does nothing and signals behave as usual.
"""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger(__name__)


class GracefulStop:
    """Context manager turning the first SIGINT/SIGTERM into a stop request (see the module docstring)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.warning(
            "%s received: stopping after the current update and writing a checkpoint (Ctrl-C again to abort)",
            signal.Signals(signum).name,
        )

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
