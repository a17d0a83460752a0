"""The live path: how fast a run starts, how fast an epoch reaches the browser, what reporting costs.

    python bench/live.py [--runs 20] [--stream-runs 3] [--rounds 5] [--logged-steps 100]

Prints JSON. Needs PostgreSQL on 127.0.0.1:5432 (a scratch database is created and
dropped) and ``redis-server`` (its own, on a free port); starts ``miles server`` and
``miles worker --cpu`` as processes, exactly as the tests do (tests/services.py).

- ``submit_to_running_s``: from just before ``POST /runs`` to the run's ``started_at``
  (set when the worker claims it), with an idle worker, one run at a time.
- ``epoch_to_sse_ms``: from the end of an epoch in the worker (the time it puts in its
  Redis notice) to the arrival of that epoch's SSE message at a client on this machine.
- ``logged_post_to_sse_ms``: a run logged from outside (``execute: false``, as
  ``client.track`` does it): from just before ``POST /runs/{id}/metrics`` to the arrival of
  the posted step at a client of the run's stream, in local mode (SQLite, no Redis: the
  server's in-process notifier) and in team mode (PostgreSQL and Redis). ``first`` is a
  step's first post (its training loss), ``update`` the second post to the same step (its
  validation metrics), which arrives as an update of the step already sent.
- ``epoch_time_memory_over_database``: the wall time of a whole epoch (training,
  evaluation, reporting, checkpoint) with an in-memory reporter, over the same with the
  worker's database reporter (PostgreSQL, Redis notices, the lease thread). The two
  trainings run on the same data and take turns epoch by epoch, so that both see the
  same machine; the median of the per-epoch ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import queue
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ would come first on the path; the repository root gives `tests`.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import redis  # noqa: E402
import torch  # noqa: E402

from bench import stats  # noqa: E402
from server.db import Database  # noqa: E402
from server.live import PREFIX, Publisher  # noqa: E402
from server.store import runs  # noqa: E402
from tests.conftest import fresh_postgres, migrated  # noqa: E402
from tests.services import MilesStack, running_redis, tiny_config  # noqa: E402
from trainer.config import TrainConfig  # noqa: E402
from trainer.datasets import load_dataset  # noqa: E402
from trainer.loop import Training  # noqa: E402
from trainer.reporting import BaseReporter, MemoryReporter, MultiReporter  # noqa: E402
from worker.lease import Lease  # noqa: E402
from worker.reporter import DatabaseReporter  # noqa: E402


def percentiles(values: list[float], scale: float = 1.0, digits: int = 3) -> dict[str, float]:
    """p50, p95 and max (times ``scale``) and the count (nearest-rank: bench/stats.py)."""
    return stats.percentiles(values, (50, 95), scale=scale, digits=digits)


def submit_to_running(stack: MilesStack, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        submitted = time.time()
        run = stack.submit(tiny_config(epochs=1))
        finished = stack.wait_for_status(run["id"], "succeeded", timeout=120)  # the worker is idle again
        latencies.append(datetime.fromisoformat(finished["started_at"]).timestamp() - submitted)
    return latencies


def epoch_to_sse(stack: MilesStack, redis_url: str, runs_count: int, epochs: int) -> dict[str, list[float]]:
    """Per live epoch: end to SSE receipt, and its two legs (to the notice's publication, then to the client)."""
    notices: dict[tuple[int, int], dict[str, Any]] = {}
    pubsub = redis.Redis.from_url(redis_url).pubsub()
    pubsub.psubscribe(f"{PREFIX}*")

    def listen() -> None:
        try:
            for message in pubsub.listen():
                if message["type"] == "pmessage":
                    notice = json.loads(message["data"])
                    if notice["type"] == "epoch":
                        notices[(notice["run"], notice["step"])] = notice
        except (redis.RedisError, ValueError):  # closed at the end
            return

    threading.Thread(target=listen, daemon=True).start()
    legs: dict[str, list[float]] = {"total": [], "write_and_publish": [], "relay_to_client": []}
    for _ in range(runs_count):
        run = stack.submit(tiny_config(epochs=epochs, dataset_params={"train_size": 2000, "val_size": 200, "test_size": 50}))
        connected = time.time()
        for message in stack.stream(run["id"]):
            if message.event == "epoch" and "loss/train" in message.data["metrics"]:
                notice = notices.get((run["id"], message.data["step"]))
                if notice is not None and notice["time"] > connected:  # sent live, not from the backlog at connection
                    legs["total"].append(message.received - notice["time"])
                    legs["write_and_publish"].append(notice["sent"] - notice["time"])
                    legs["relay_to_client"].append(message.received - notice["sent"])
    pubsub.close()
    return legs


def logged_post_to_sse(stack: MilesStack, steps: int) -> dict[str, list[float]]:
    """Per post of a logged run: from just before the POST to the arrival of its points on the stream."""
    with stack.api as api:
        run_id = api.post("/runs", json={"execute": False, "name": "bench-logged"}).raise_for_status().json()["id"]
    arrived: queue.Queue[Any] = queue.Queue()

    def follow() -> None:
        for message in stack.stream(run_id):
            arrived.put(message)
            if message.event == "end":
                return

    threading.Thread(target=follow, daemon=True).start()

    def until(step: int, key: str) -> float:
        while True:
            message = arrived.get(timeout=10)
            if message.event == "epoch" and message.data["step"] == step and key in message.data["metrics"]:
                return message.received

    latencies: dict[str, list[float]] = {"first": [], "update": []}
    with stack.api as api:
        until_connected = time.monotonic() + 10
        while arrived.empty() and time.monotonic() < until_connected:  # the stream's first status
            time.sleep(0.01)
        for step in range(1, steps + 1):
            for leg, key in (("first", "loss/train"), ("update", "metric/val")):
                posted = time.time()
                api.post(f"/runs/{run_id}/metrics", json={"points": [{"key": key, "step": step, "value": 1 / step}]})
                latencies[leg].append(until(step, key) - posted)
        api.patch(f"/runs/{run_id}", json={"status": "succeeded"}).raise_for_status()
    return latencies


class Turns(BaseReporter):
    """Two trainings take turns, a whole epoch each (training, evaluation, reporting, checkpoint), so that both
    see the same machine; each epoch is timed from the moment its training resumes to the next hand-over."""

    def __init__(self, name: str, baton: dict[str, Any]) -> None:
        self.name = name
        self.baton = baton  # {"turn": name, "done": set(), "lock": threading.Condition()}
        self.epoch_seconds: list[float] = []
        self._resumed: float | None = None
        self._epoch_ended = True

    def on_epoch(self, epoch: int, metrics: Any) -> None:
        self._epoch_ended = self._epoch_ended or "loss/train" in metrics

    def should_stop(self) -> bool:  # called before every batch: the first one of an epoch hands over
        if self._epoch_ended:
            if self._resumed is not None:
                self.epoch_seconds.append(time.perf_counter() - self._resumed)
            self._pass()
            self._resumed, self._epoch_ended = time.perf_counter(), False
        return False

    def _pass(self) -> None:
        lock = self.baton["lock"]
        with lock:
            others = [name for name in self.baton["names"] if name != self.name and name not in self.baton["done"]]
            if others:
                self.baton["turn"] = others[0]
                lock.notify_all()
                lock.wait_for(lambda: self.baton["turn"] == self.name or others[0] in self.baton["done"])

    def finished(self) -> None:
        with self.baton["lock"]:
            self.baton["done"].add(self.name)
            self.baton["lock"].notify_all()


class Stopwatch(BaseReporter):
    """Times the calls of the reporter it wraps: what reporting costs, free of the noise of training."""

    def __init__(self, inner: BaseReporter) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.epochs = 0

    def on_epoch(self, epoch: int, metrics: Any) -> None:
        started = time.perf_counter()
        self.inner.on_epoch(epoch, metrics)
        self.seconds += time.perf_counter() - started
        self.epochs += "loss/train" in metrics

    def on_event(self, epoch: int, kind: str, message: str, data: Any) -> None:
        started = time.perf_counter()
        self.inner.on_event(epoch, kind, message, data)
        self.seconds += time.perf_counter() - started

    def should_stop(self) -> bool:
        return self.inner.should_stop()


# An epoch of a few seconds on two cores: still short next to real trainings (minutes on real data).
OVERHEAD_DATA = {"train_size": 12000, "val_size": 2000, "test_size": 500, "dim": 64, "classes": 10}


def reporting_overhead(database_url: str, redis_url: str, home: Path, rounds: int, epochs: int) -> dict[str, Any]:
    config = TrainConfig(dataset="synthetic", dataset_params=OVERHEAD_DATA, epochs=epochs, device="cpu", seed=0)
    data = load_dataset(config)
    database, publisher = Database(database_url), Publisher(redis_url)
    memory_s: list[float] = []
    database_s: list[float] = []
    reporting_s: list[float] = []

    def side_by_side() -> tuple[list[float], list[float]]:
        baton: dict[str, Any] = {"names": ("memory", "database"), "turn": "memory", "done": set(),
                                 "lock": threading.Condition()}
        turns = {name: Turns(name, baton) for name in baton["names"]}
        with database.transaction() as session:
            run_id = runs.create(session=session, config=config, execute=True).id
            runs.claim(session=session, run_id=run_id, worker="bench:0")

        def in_memory() -> None:
            try:
                Training(config, MultiReporter(turns["memory"], MemoryReporter()), dataset=data,
                         checkpoint_dir=home / f"memory{run_id}").run()
            finally:
                turns["memory"].finished()

        def in_database() -> None:
            try:
                with Lease(database, run_id, "bench:0", shutdown=threading.Event(), max_seconds=3600) as lease:
                    reporter = Stopwatch(DatabaseReporter(
                        database=database, publisher=publisher, run_id=run_id, worker="bench:0", attempt=1,
                        should_stop=lease.should_stop,
                    ))
                    Training(config, MultiReporter(turns["database"], reporter), dataset=data,
                             checkpoint_dir=home / f"database{run_id}").run()
                reporting_s.append(reporter.seconds / reporter.epochs)
            finally:
                turns["database"].finished()

        threads = [threading.Thread(target=in_memory), threading.Thread(target=in_database)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return turns["memory"].epoch_seconds, turns["database"].epoch_seconds

    side_by_side()  # warm-up
    reporting_s.clear()
    ratios = []
    for _ in range(rounds):
        memory, db = side_by_side()
        memory_s += memory
        database_s += db
        ratios += [m / d for m, d in zip(memory, db, strict=False)]
    database.dispose()
    return {
        "epoch_time_memory_over_database": round(statistics.median(ratios), 4),
        "epoch_seconds": {"memory": round(statistics.median(memory_s), 4), "database": round(statistics.median(database_s), 4)},
        "database_reporting_ms_per_epoch": round(statistics.median(reporting_s) * 1000, 1),
        "epochs_compared": len(ratios), "data": {"dataset": "synthetic", **OVERHEAD_DATA}, "rounds": rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="Runs for the submit-to-running latency.")
    parser.add_argument("--stream-runs", type=int, default=3, help="Runs whose epochs are timed to the SSE client.")
    parser.add_argument("--stream-epochs", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=4, help="Runs of each reporter in the comparison.")
    parser.add_argument("--overhead-epochs", type=int, default=6)
    parser.add_argument("--logged-steps", type=int, default=100, help="Steps of the logged run, two posts each.")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": {"cpu_count": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
                    "torch": torch.__version__, "python": platform.python_version()},
    }
    logged: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="miles-bench-") as scratch:  # local mode: SQLite, no Redis, no worker
        local = MilesStack(home=Path(scratch), database_url=migrated(f"sqlite:///{scratch}/miles.db"), redis=None)
        with contextlib.closing(local):
            local.start_server()
            logged["local"] = logged_post_to_sse(local, args.logged_steps)
    with (
        tempfile.TemporaryDirectory(prefix="miles-bench-") as scratch,
        fresh_postgres() as url,
        running_redis(Path(scratch)) as redis_server,
    ):
        home = Path(scratch)
        stack = MilesStack(home=home, database_url=migrated(url), redis=redis_server)
        with contextlib.closing(stack):
            stack.start("--cpu")
            logged["team"] = logged_post_to_sse(stack, args.logged_steps)
            results["logged_post_to_sse_ms"] = {
                mode: {leg: percentiles(values, scale=1000, digits=1) for leg, values in legs.items()}
                for mode, legs in logged.items()
            }
            results["submit_to_running_s"] = percentiles(submit_to_running(stack, args.runs))
            legs = epoch_to_sse(stack, redis_server.url, args.stream_runs, args.stream_epochs)
            results["epoch_to_sse_ms"] = percentiles(legs.pop("total"), scale=1000, digits=1)
            results["epoch_to_sse_legs_ms"] = {leg: percentiles(v, scale=1000, digits=1) for leg, v in legs.items()}
        results["reporting"] = reporting_overhead(stack.database_url, redis_server.url, home, args.rounds, args.overhead_epochs)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
