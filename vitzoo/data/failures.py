"""A failure counter shared by a dataset and all of its DataLoader workers."""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import get_spawning_popen


class FailureCounter:
    """An integer in shared memory: increments made in any DataLoader worker are visible everywhere.

    Works with ``fork`` workers (inherited memory) and with ``spawn``/``forkserver`` workers (the
    shared value travels with the dataset when the worker starts). The lock is created from the
    spawn context because a fork-context lock cannot be sent to spawned processes.

    Copying the counter any other way (``pickle.dumps``, ``copy.deepcopy``) snapshots the current
    value into a new, independent counter. Separate training processes (DDP ranks) each have their
    own counter; sum them with an all-reduce if a global number is needed.
    """

    def __init__(self, value: int = 0) -> None:
        self._shared = multiprocessing.get_context("spawn").Value("q", value)

    @property
    def value(self) -> int:
        """Current count."""
        return int(self._shared.value)

    def increment(self) -> int:
        """Add one and return the new count."""
        with self._shared.get_lock():
            self._shared.value += 1
            return int(self._shared.value)

    def reset(self) -> None:
        """Set the count back to zero."""
        with self._shared.get_lock():
            self._shared.value = 0

    def __getstate__(self) -> dict:
        if get_spawning_popen() is not None:  # starting a worker process: share the memory
            return {"shared": self._shared}
        return {"snapshot": self.value}  # any other copy: an independent counter

    def __setstate__(self, state: dict) -> None:
        if "shared" in state:
            self._shared = state["shared"]
        else:
            self.__init__(state["snapshot"])

    def __repr__(self) -> str:
        return f"FailureCounter({self.value})"
