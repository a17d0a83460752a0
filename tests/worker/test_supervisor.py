"""`miles worker`: one process per GPU or CPU slot, restarted when it dies, never left behind."""

from __future__ import annotations

import os
import signal

import click
import pytest

from tests.services import wait_until
from worker.cli import parse_gpus
from worker.supervisor import ProcessSpec, plan

pytestmark = pytest.mark.worker


def test_one_process_per_gpu_each_seeing_only_its_own_device():
    assert plan([0, 1], cpu=True, concurrency=1) == [
        ProcessSpec("gpu0", "gpu", "0"), ProcessSpec("gpu1", "gpu", "1"), ProcessSpec("cpu0", "cpu", ""),
    ]
    assert [s.name for s in plan([3], cpu=False, concurrency=2)] == ["gpu3.0", "gpu3.1"]


def test_gpus_this_machine_lacks_are_refused_by_name():
    import torch

    count = torch.cuda.device_count()
    with pytest.raises(click.BadParameter, match=f"GPU {count} does not exist"):
        parse_gpus(f"{count}")
    with pytest.raises(click.BadParameter, match="distinct GPU indices"):
        parse_gpus("0,0")


def children(worker) -> list[int]:
    return [pid for pid in worker.session_pids() if pid != worker.pid]


@pytest.mark.slow
def test_a_worker_process_that_dies_is_restarted_and_sigterm_stops_them_all(miles_stack, sqlite_database):
    stack = miles_stack(database_url=sqlite_database, redis=None)
    worker = stack.start_worker("--cpu")
    [child] = children(worker)

    os.kill(child, signal.SIGKILL)
    worker.wait_for_log("ready: consuming", timeout=60, count=2)
    assert "exited with status -9; restarting" in worker.log()

    assert worker.stop(signal.SIGTERM) == 0
    assert worker.session_pids() == []


@pytest.mark.slow
def test_a_killed_supervisor_takes_its_worker_processes_with_it(miles_stack, sqlite_database):
    stack = miles_stack(database_url=sqlite_database, redis=None)
    worker = stack.start_worker("--cpu")
    assert children(worker)

    os.kill(worker.pid, signal.SIGKILL)  # the supervisor alone: its processes get SIGTERM from the kernel

    wait_until(lambda: worker.session_pids() == [], 30, "the worker processes to exit")
