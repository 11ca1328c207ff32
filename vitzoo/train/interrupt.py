"""Graceful stop on Ctrl-C / SIGTERM: finish the current update, write a checkpoint, return.

Inside :class:`GracefulStop`, the first SIGINT or SIGTERM only sets :attr:`GracefulStop.requested`; the
training loop checks it after every update, saves and stops. A second SIGINT raises ``KeyboardInterrupt``
at once (the last checkpoint written stays valid: every file is replaced atomically). Handlers can only
be installed from the main thread; elsewhere the context does nothing and signals behave as usual.

Ctrl-C reaches every process of the terminal's process group, DataLoader workers included. Workers forked while
the handler is installed inherit it; in them SIGINT does nothing (the process that installed it decides, and its
workers must keep serving the batches of the update it finishes) and SIGTERM ends the worker as usual, so the stop
is announced once, by the training process, labelled with its rank.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

log = logging.getLogger(__name__)


class GracefulStop:
    """Context manager turning the first SIGINT/SIGTERM into a stop request (see the module docstring).

    ``rank``: the process's rank under ``torchrun``, named in the message.
    """

    def __init__(self, *, rank: int = 0) -> None:
        self.requested = False
        self.rank = rank
        self._pid = os.getpid()
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if os.getpid() != self._pid:  # a forked DataLoader worker
            if signum == signal.SIGTERM:  # as if never installed: the loader stops its workers with SIGTERM
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
            return  # Ctrl-C: the training process handles it; this worker keeps serving batches
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.warning(
            "%s received by rank %d: stopping after the current update and writing a checkpoint "
            "(Ctrl-C again to abort)",
            signal.Signals(signum).name,
            self.rank,
        )

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            self._pid = os.getpid()
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
