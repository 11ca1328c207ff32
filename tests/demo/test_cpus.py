"""vitzoo.demo.cpus: torch threads per phase, and runs side by side in spawned processes."""

from __future__ import annotations

import os
import sys

import pytest
import torch

from vitzoo.demo.cpus import run_jobs, torch_threads, usable_cpus


def where(value: int) -> tuple[int, int, int, bool]:
    """The job's value, the torch threads it ran with, its process and whether its stderr claims a terminal."""
    return value, torch.get_num_threads(), os.getpid(), sys.stderr.isatty()


def fail(value: int) -> None:
    raise RuntimeError(f"job {value} failed")


def test_torch_threads_sets_and_restores_the_count_even_on_error():
    before = torch.get_num_threads()
    with pytest.raises(KeyError), torch_threads(1):
        assert torch.get_num_threads() == 1
        raise KeyError("inside")
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="num_threads=0"), torch_threads(0):
        pass


def test_one_process_runs_the_jobs_here_in_order():
    results = run_jobs([(f"job{i}", where, {"value": i}) for i in range(3)], processes=1)
    assert [r[0] for r in results] == [0, 1, 2] and {r[2] for r in results} == {os.getpid()}
    with pytest.raises(ValueError, match="processes=0"):
        run_jobs([], processes=0)


@pytest.mark.slow  # two spawned processes import torch: about 9 s on 2 cores
def test_two_processes_keep_the_order_and_split_the_cpus():
    results = run_jobs([(f"job{i}", where, {"value": i}) for i in range(4)], processes=2)
    assert [r[0] for r in results] == [0, 1, 2, 3]
    assert {r[1] for r in results} == {max(1, usable_cpus() // 2)}
    assert os.getpid() not in {r[2] for r in results}
    assert not any(r[3] for r in results)  # log lines, not progress bars, from runs side by side


@pytest.mark.slow
def test_a_failing_job_raises_here():
    with pytest.raises(RuntimeError, match="job 1 failed"):
        run_jobs([("ok", where, {"value": 0}), ("bad", fail, {"value": 1})], processes=2)
