"""One training run per run directory: an OS file lock on ``<out_dir>/run.lock`` held for the run's life.

Two runs writing into one directory would interleave their checkpoints and metric records and delete each
other's files. :class:`RunLock` takes an exclusive ``fcntl.flock`` on ``run.lock`` without waiting; a second run
on the same directory (``fit_task``, ``vitzoo train``, with or without ``--resume``) refuses at once with
:class:`~vitzoo.train.errors.RunLockedError`, naming the holder (pid, host and start time, which the holder
writes into the file). The lock belongs to the open file, so the operating system releases it whenever the
holding process ends, however it ends (exception, Ctrl-C, ``kill -9``, a crash): a crashed run never leaves a
stale lock, and ``--resume`` after a crash just works. Processes forked while the lock is held (DataLoader
workers) close their copy of the descriptor at once, so they cannot keep the lock after the holder has gone.
The file itself stays (deleting it would let two processes lock two different files of the same name); its
content is only read when locking fails.

Under ``torchrun`` only rank 0 takes the lock (the other ranks write nothing); :func:`lock_run_directory`
tells every rank whether it succeeded, so all ranks refuse together. ``flock`` works on local file systems and
on NFS (Linux emulates it with byte-range locks there). Without ``fcntl`` (Windows) nothing is locked and a
warning says so.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import weakref
from pathlib import Path
from typing import Any

from vitzoo.durable import make_directory
from vitzoo.train.errors import RunLockedError

log = logging.getLogger(__name__)

LOCK_NAME = "run.lock"


def _describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "holder unknown: it has not written its details yet"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"pid {holder.get('pid')} on host {holder.get('host')}, started {started}"


class RunLock:
    """An exclusive, non-blocking lock on ``<directory>/run.lock`` (see the module docstring).

    Use as a context manager, or :meth:`acquire` / :meth:`release`. Holding it twice from one object raises.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`RunLockedError` naming the holder (never waits)."""
        try:
            import fcntl
        except ImportError:  # Windows
            log.warning("cannot lock %s: file locks need fcntl (POSIX); make sure no other run uses it", self.directory)
            return
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this RunLock")
        make_directory(self.directory, what="run directory")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_holder(self.path)
            os.close(fd)
            raise RunLockedError(
                f"{self.directory} is in use by another run ({_describe(holder)}); wait for it to end, stop it, "
                "or choose another output_dir"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        self._fd = fd
        me = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (lock := me()) is not None and lock._forget())
        log.debug("locked %s", self.path)

    def _forget(self) -> None:
        """In a forked child (a DataLoader worker): close the inherited descriptor without touching the lock, so
        that the lock goes with the holder's own end, not with the last of its children."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def release(self) -> None:
        """Give the lock up (closing the file releases it); a no-op when not held."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # no holder any more
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def read_holder(path: str | os.PathLike) -> dict[str, Any] | None:
    """What the holder of a lock file wrote (pid, host, start time), or None when it is empty or unreadable."""
    try:
        return json.loads(Path(path).read_text()) or None
    except (OSError, ValueError):
        return None


def lock_run_directory(directory: str | os.PathLike, *, is_main: bool, distributed: bool) -> RunLock:
    """The held lock of a run directory on the main rank (an unheld one elsewhere); every rank raises
    :class:`RunLockedError` when the main rank could not take it."""
    from vitzoo.train.distributed import gather_objects

    lock = RunLock(directory)
    failure: BaseException | None = None
    if is_main:
        try:
            lock.acquire()
        except Exception as exc:  # told to the other ranks before it is raised
            failure = exc
    if distributed:
        message = gather_objects(None if failure is None else str(failure))[0]  # rank 0's answer, on every rank
        if message is not None and failure is None:
            raise RunLockedError(message)
    if failure is not None:
        raise failure
    return lock
