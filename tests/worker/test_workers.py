"""The workers list and the machine behind each run, with real `miles server` and worker processes.

Local mode (SQLite, no Redis) unless a test says otherwise: the registry lives in the database,
so it needs no Celery remote control, which the local broker lacks.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import time
from datetime import UTC, datetime

import pytest

from tests.services import WorkerProcess, tiny_config, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def listed(stack) -> dict[str, dict]:
    """The workers list, by process name (cpu0, gpu0, ...)."""
    with stack.api as api:
        return {worker["process"]: worker for worker in api.get("/workers").json()["items"]}


def start_gpu_queue_process(stack) -> WorkerProcess:
    """A worker process on the gpu queue without `miles worker --gpus` (no GPU here): it registers and waits."""
    command = [sys.executable, "-m", "worker.process", "--queue", "gpu", "--name", "gpu0", "--parent", str(os.getpid())]
    process = WorkerProcess([], stack.env(), stack.home / "worker-gpu.log", command=command)
    stack.workers.append(process)
    process.start()
    return process


@pytest.mark.postgres
@pytest.mark.redis
def test_two_workers_on_different_queues_are_listed_with_the_right_state_while_one_trains(
    miles_stack, postgres_database, redis_process,
):
    stack = miles_stack(database_url=postgres_database, redis=redis_process)
    stack.start("--cpu")
    start_gpu_queue_process(stack)
    run = stack.submit(tiny_config(epochs=500), name="long one")
    stack.wait_for_status(run["id"], "running")

    workers = wait_until(lambda: (found := listed(stack)) and found.get("cpu0", {}).get("status") == "busy" and found,
                         10, "the cpu worker busy")

    assert set(workers) == {"cpu0", "gpu0"}
    cpu, gpu = workers["cpu0"], workers["gpu0"]
    assert (cpu["queues"], cpu["device"], cpu["run"]) == (["cpu"], "cpu", {"id": run["id"], "name": "long one"})
    assert (gpu["queues"], gpu["device"], gpu["status"], gpu["run"]) == (["gpu"], "cuda", "idle", None)
    assert cpu["name"] == stack.run(run["id"])["worker"] and cpu["pid"] != gpu["pid"]
    assert list(workers) == ["cpu0", "gpu0"], "a busy worker is listed before an idle one"
    with stack.api as api:
        api.post(f"/runs/{run['id']}/cancel")
    stack.wait_for_status(run["id"], "cancelled", timeout=30)
    wait_until(lambda: listed(stack)["cpu0"]["status"] == "idle", 10, "the cpu worker idle again")


def test_a_killed_worker_turns_lost_after_the_heartbeat_timeout_and_stays_listed(miles_stack, sqlite_database):
    stack = miles_stack(database_url=sqlite_database, redis=None, heartbeat_timeout=2)
    _, worker = stack.start("--cpu")
    assert listed(stack)["cpu0"]["status"] == "idle"

    worker.kill()  # SIGKILL to the supervisor and its process: nothing gets to say goodbye
    killed = datetime.now(UTC)
    lost = wait_until(lambda: (found := listed(stack)["cpu0"])["status"] == "lost" and found, 15, "the worker lost")
    seen = datetime.now(UTC)

    last_beat = datetime.fromisoformat(lost["heartbeat_at"])
    assert last_beat <= killed, "no heartbeat after the kill"
    assert (seen - last_beat).total_seconds() >= 2, "marked lost only once its heartbeat timeout had passed"
    with stack.api as api:
        assert [w["status"] for w in api.get("/workers").json()["items"]] == ["lost"], "and still listed"


def test_a_run_on_an_unserved_queue_carries_the_warning_until_a_worker_for_it_starts_then_runs(
    miles_stack, sqlite_database,
):
    stack = miles_stack(database_url=sqlite_database, redis=None)
    stack.start_server()

    run = stack.submit(tiny_config(epochs=2))

    assert run["status"] == "queued" and run["unserved"]["command"] == "miles worker --cpu"
    time.sleep(1.5)  # nothing consumes the queue: it stays queued, and says why
    waiting = stack.run(run["id"])
    assert waiting["status"] == "queued" and waiting["unserved"] == run["unserved"]
    with stack.api as api:
        assert api.get("/runs").json()["items"][0]["unserved"] == run["unserved"]

    stack.start_worker("--cpu")

    assert stack.run(run["id"])["unserved"] is None
    assert stack.wait_for_status(run["id"], "succeeded", "failed", timeout=60)["status"] == "succeeded"


def test_system_metrics_arrive_during_a_run_and_appear_in_the_csv(miles_stack, sqlite_database):
    stack = miles_stack(database_url=sqlite_database, redis=None, system_interval=1)
    stack.start("--cpu")
    # Several seconds of training even on an idle machine, so that samples after the first (the first has no
    # throughput yet) are taken while it trains.
    run = stack.submit(tiny_config(epochs=300, batch_size=8))
    stack.wait_for_status(run["id"], "running")

    messages = list(stack.stream(run["id"]))

    final = next(i for i, m in enumerate(messages) if m.event == "status" and m.data["status"] == "succeeded")
    during = [m for m in messages[:final] if m.event == "system"]
    assert during, "no system sample reached the stream while the run trained"
    assert all(m.data["metrics"]["sys/memory_mib"] > 10 for m in during if "sys/memory_mib" in m.data["metrics"])
    with stack.api as api:
        text = api.get(f"/runs/{run['id']}/metrics.csv").text
    rows = [row for row in csv.DictReader(io.StringIO(text)) if row["key"].startswith("sys/")]
    assert {"sys/cpu_percent", "sys/memory_mib", "sys/samples_per_s"} <= {row["key"] for row in rows}
    assert max(float(row["value"]) for row in rows if row["key"] == "sys/samples_per_s") > 0
    finished = stack.run(run["id"])
    trained = datetime.fromisoformat(finished["finished_at"]) - datetime.fromisoformat(finished["started_at"])
    steps = sorted({int(row["step"]) for row in rows})
    assert steps[0] >= 1 and steps[-1] <= trained.total_seconds() + 1, "a system step is seconds since the run started"
    machine = finished["machine"]
    assert machine["worker"] == finished["worker"] and machine["device"] == "cpu" and machine["torch"]
