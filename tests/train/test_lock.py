"""One run per run directory: the lock refuses a second holder at once naming the first (pid, host, start time),
is released however its holder ends (a process killed with SIGKILL included), and ``fit_task`` takes it before it
touches the directory."""

from __future__ import annotations

import os
import signal
import socket

import pytest

from tests.helpers.training import IMAGE_SHAPE, RandomViews, label_free_task
from vitzoo.train import fit_task
from vitzoo.train.errors import RunLockedError
from vitzoo.train.lock import RunLock, read_holder


def test_a_second_holder_is_refused_naming_the_first(tmp_path):
    with RunLock(tmp_path) as first:
        assert first.held and read_holder(first.path)["pid"] == os.getpid()
        with pytest.raises(RunLockedError) as info:
            RunLock(tmp_path).acquire()
        message = str(info.value)
        assert f"pid {os.getpid()} on host {socket.gethostname()}, started 20" in message and "\n" not in message
    with RunLock(tmp_path) as again:  # released on exit: the next run takes it
        assert again.held


def test_the_lock_of_a_killed_process_is_free(tmp_path):
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: take the lock, say so, wait to be killed
        try:
            RunLock(tmp_path).acquire()
            os.write(ready_w, b"1")
            signal.pause()
        finally:
            os._exit(1)
    try:
        assert os.read(ready_r, 1) == b"1"
        with pytest.raises(RunLockedError, match=f"pid {pid} "):
            RunLock(tmp_path).acquire()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready_r)
        os.close(ready_w)
    with RunLock(tmp_path) as lock:  # no stale lock: the operating system released it with the process
        assert lock.held and read_holder(lock.path)["pid"] == os.getpid()


def test_children_forked_while_holding_do_not_keep_the_lock(tmp_path):
    """DataLoader workers are forked while the lock is held; when the holder ends, its lock must end with it."""
    ready_r, ready_w = os.pipe()
    with RunLock(tmp_path):
        pid = os.fork()
        if pid == 0:  # a worker that outlives its parent's run
            try:
                os.write(ready_w, b"1")  # after the fork handlers ran
                signal.pause()
            finally:
                os._exit(1)
        assert os.read(ready_r, 1) == b"1"
    try:
        with RunLock(tmp_path) as again:  # the child still runs, yet the lock is free
            assert again.held
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready_r)
        os.close(ready_w)


@pytest.mark.parametrize("resume", [False, True])
def test_fit_refuses_a_directory_in_use_before_touching_it(tmp_path, resume):
    with RunLock(tmp_path), pytest.raises(RunLockedError, match="in use by another run"):
        fit_task(label_free_task(), RandomViews(4, IMAGE_SHAPE), out_dir=tmp_path, batch_size=2, resume=resume)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.lock"]
