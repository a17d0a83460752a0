"""Benchmark of the REST API against PostgreSQL; prints JSON.

Starts ``miles server`` (uvicorn) on a fresh PostgreSQL database and measures, over HTTP:

- ingest: points per second through ``POST /runs/{id}/metrics`` in batches of 50,000
  (bodies encoded before the clock starts: this is the server's throughput);
- listing: p50/p99 of ``GET /runs`` (a page of 50, with tags and latest values) with
  10,000 runs stored, on the first page, a deep page and a filtered page;
- downsampling: p50/p99 of reading the 1,000,000-point series ingested above as at most
  2,000 points (``GET /runs/{id}/metrics?max_points=2000``).

Then, on both backends (SQLite and PostgreSQL, each behind its own ``miles server``):

- ``ingest_vs_bare``: at 10, 1,000 and 50,000 points per request, the throughput of
  ``POST /runs/{id}/metrics`` over that of a bare write of the same rows into the same
  table in the same run (``COPY`` on PostgreSQL, ``executemany`` on SQLite, one
  transaction per request's rows), the two taking turns request by request;
- ``level_crossing``: p50 of the 10-point request that takes a run's series to a new rollup level
  (steps 64, 256, 1,024) against that of the step before;
- ``concurrent_small_ingest``: p50/p99 of 10-point requests from 8 writers (``--writers``) at once, each
  into its own run: ``saturated``, each writer posting again as soon as its answer arrives (8
  requests always in flight: the server's throughput shows as latency), and ``paced``, each
  writer posting every ``--pace`` seconds (a training loop's steps; the latency a loop sees), and
  ``paced_processes``, the same with each writer a process of its own (as a team's loops are: threads
  of one client process also wait for each other's interpreter lock), in ``--paced-rounds`` rounds
  that take turns, on PostgreSQL, with rounds of the same writers writing their rows straight through
  the driver (COPY and commit): the latency the machine itself gives such writers in the same
  minutes, beside the API's;
- ``filtered_list``: p50/p99 of ``GET /runs`` unfiltered and with each filter of the runs
  page, at 10,000 and at 100,000 runs.

    python bench/api.py                  # --points 1000000 --runs 10000 --requests 300
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import platform
import queue
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ would come first on the path; the repository root gives `tests`.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from bench import stats  # noqa: E402
from server.db import Database  # noqa: E402
from server.models import Experiment, LatestMetric, Run, RunTag  # noqa: E402
from tests.conftest import fresh_postgres, migrated  # noqa: E402
from tests.services import MilesStack  # noqa: E402


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p99 and max in milliseconds, and the count (nearest-rank: bench/stats.py)."""
    return stats.percentiles(samples, (50, 99), scale=1000, digits=2, unit="_ms")


def timed(call: Callable[[], httpx.Response], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        response = call()
        samples.append(time.perf_counter() - started)
        response.raise_for_status()
    return samples


def bench_ingest(api: httpx.Client, points: int, batch: int) -> tuple[int, dict[str, float]]:
    run_id = api.post("/runs", json={"execute": False, "name": "ingest"}).raise_for_status().json()["id"]
    now = time.time()
    bodies = [
        json.dumps({"points": [
            {"key": "loss/train", "step": step, "value": math.sin(step / 1000) + random.random(), "time": now}
            for step in range(start, min(points, start + batch))
        ]}).encode()
        for start in range(0, points, batch)
    ]
    seconds = []
    for body in bodies:
        started = time.perf_counter()
        api.post(f"/runs/{run_id}/metrics", content=body, headers={"content-type": "application/json"}).raise_for_status()
        seconds.append(time.perf_counter() - started)
    return run_id, {
        "points": points, "batch": batch, "requests": len(bodies), "seconds": round(sum(seconds), 2),
        "points_per_second": round(points / sum(seconds)), "batch_seconds_p50": round(statistics.median(seconds), 3),
        "body_bytes_per_batch": len(bodies[0]),
    }


def store_runs(database_url: str, count: int, offset: int = 0) -> None:
    """``count`` runs with two tags and eight latest values each, written straight to the tables, the
    ``offset``-th one first; every run belongs to one of ten experiments."""
    database = Database(database_url)
    statuses = ["succeeded"] * 6 + ["failed", "cancelled", "running", "queued"]
    methods = ["miles", "joint", "joint_aux"]
    start = datetime.now(UTC) - timedelta(days=30)
    keys = ["metric/val/fused", "metric/val/pix", "metric/val/fou", "util/pix", "util/fou", "util/delta",
            "loss/train", "loss/val"]
    with database.transaction() as session:
        experiments = {e.name: e.id for e in session.scalars(select(Experiment))}
        for n in range(10):
            if f"exp{n}" not in experiments:
                experiments[f"exp{n}"] = session.scalars(insert(Experiment).returning(Experiment.id), [{"name": f"exp{n}"}]).one()
        for chunk in range(offset, offset + count, 2000):
            rows = []
            for index in range(chunk, min(offset + count, chunk + 2000)):
                method = methods[index % 3]
                rows.append({
                    "name": f"{method} seed {index % 5} #{index}", "status": statuses[index % len(statuses)],
                    "execute": True, "method": method, "dataset": ("mfeat", "avmnist")[index % 2],
                    "fusion": ("concat", "late", "sum", "film")[index % 4], "seed": index % 5,
                    "experiment_id": experiments[f"exp{index % 10}"],
                    "queue": "gpu", "created_at": start + timedelta(seconds=index * 250), "attempts": 1, "epoch": 30,
                    "cancel_requested": False,
                    "spec": {"dataset": "mfeat", "method": method, "modalities": ["pix", "fou"], "epochs": 30,
                             "params": {"tau": 0.2, "mu": 0.5} if method == "miles" else {}, "seed": index % 5},
                })
            ids = session.scalars(insert(Run).returning(Run.id), rows).all()
            session.execute(insert(RunTag), [{"run_id": i, "tag": t} for i in ids for t in ("bench", f"seed{i % 5}")])
            session.execute(insert(LatestMetric), [
                {"run_id": i, "key": key, "step": 30, "value": random.random(), "time": start} for i in ids for key in keys
            ])
    with database.engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        connection.commit()
    database.dispose()


def logged_run(api: httpx.Client, name: str) -> int:
    return api.post("/runs", json={"execute": False, "name": name}).raise_for_status().json()["id"]


def request_points(size: int, request: int) -> list[tuple[str, int, float]]:
    """The ``request``-th batch of ``size`` points of a training loop: up to 10 keys a step, steps ascending."""
    keys = [f"metric/k{k}" for k in range(min(size, 10))]
    steps = size // len(keys)
    return [(key, request * steps + step, random.random()) for step in range(steps) for key in keys]


def _driver_url(database_url: str) -> str:
    return database_url.replace("postgresql+psycopg", "postgresql")


def _copy_rows(connection: psycopg.Connection[Any], rows: list[tuple[Any, ...]]) -> None:
    """``rows`` into ``metric`` by COPY, committed: the bare write on PostgreSQL."""
    with connection.cursor() as cursor, cursor.copy("COPY metric (run_id, key, step, value, time) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    connection.commit()


def bare_write(database_url: str, dialect: str, run_id: int, points: list[tuple[str, int, float]]) -> float:
    """Seconds to write ``points`` into ``metric`` straight through the driver, in one transaction."""
    stamp = datetime.now(UTC)
    rows = [(run_id, key, step, value, stamp) for key, step, value in points]
    if dialect == "postgresql":
        with psycopg.connect(_driver_url(database_url)) as connection:
            started = time.perf_counter()
            _copy_rows(connection, rows)
            return time.perf_counter() - started
    connection = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=30)
    try:
        started = time.perf_counter()
        with connection:
            connection.executemany("INSERT INTO metric (run_id, key, step, value, time) VALUES (?, ?, ?, ?, ?)",
                                   [(*row[:4], row[4].isoformat()) for row in rows])
        return time.perf_counter() - started
    finally:
        connection.close()


def ingest_vs_bare(api: httpx.Client, database_url: str, dialect: str, size: int, requests: int) -> dict[str, float]:
    """Ingest over HTTP and the bare write of the same rows, taking turns request by request."""
    run_id, bare_run = logged_run(api, f"ingest {size}"), logged_run(api, f"bare {size}")
    now = time.time()
    through_api, bare = [], []
    for request in range(requests):
        points = request_points(size, request)
        body = json.dumps({"points": [{"key": k, "step": s, "value": v, "time": now} for k, s, v in points]}).encode()
        started = time.perf_counter()
        api.post(f"/runs/{run_id}/metrics", content=body, headers={"content-type": "application/json"}).raise_for_status()
        through_api.append(time.perf_counter() - started)
        bare.append(bare_write(database_url, dialect, bare_run, points))
    return {
        "points_per_request": size, "requests": requests,
        "api_points_per_second": round(size * requests / sum(through_api)),
        "bare_points_per_second": round(size * requests / sum(bare)),
        "api_over_bare": round(sum(bare) / sum(through_api), 3),
        "api_request_ms_p50": round(statistics.median(through_api) * 1000, 2),
    }


def concurrent_small_ingest(
    base_url: str, writers: int, requests: int, pace: float | None, processes: bool = False,
) -> dict[str, Any]:
    """10-point requests from ``writers`` clients at once, each into its own run (`writers_samples`)."""
    return {"writers": writers, "as": "processes" if processes else "threads", "through": "api",
            "points_per_request": 10, "pace_s": pace, **percentiles(writers_samples(base_url, writers, requests, pace, processes))}


def paced_side_by_side(
    base_url: str, writers: int, requests: int, pace: float, rounds: int, bare: str | None,
) -> dict[str, Any]:
    """The paced writers as processes, through the API and (with ``bare``, a PostgreSQL URL) straight
    through the driver, in ``rounds`` alternating rounds: the machine's noise comes in episodes of
    seconds, so each side's figures are pooled over rounds that took turns with the other's, and
    every round's p99 is kept to show how much one round can say."""
    sides = {"api": None} | ({"driver": bare} if bare else {})
    samples: dict[str, list[float]] = {side: [] for side in sides}
    round_p99: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(rounds):
        for side, url in sides.items():
            taken = writers_samples(base_url, writers, requests, pace, processes=True, bare=url)
            samples[side] += taken
            round_p99[side].append(percentiles(taken)["p99_ms"])
    return {"writers": writers, "as": "processes", "points_per_request": 10, "pace_s": pace, "rounds": rounds} | {
        side: {**percentiles(samples[side]), "round_p99_ms": round_p99[side]} for side in sides
    }


def writers_samples(
    base_url: str, writers: int, requests: int, pace: float | None, processes: bool = False, bare: str | None = None,
) -> list[float]:
    """The request times, in seconds, of ``writers`` clients writing ``requests`` 10-point requests each, at
    once, each into its own run; with ``pace``, each writer starts a request every ``pace`` seconds (the
    writers' starts spread over one period). The writers are threads of this process, or with
    ``processes`` processes of their own, as the training loops of a team are (threads also queue for
    this process's interpreter lock, on the client's side). With ``bare`` (a PostgreSQL URL) each writer
    writes its 10 rows straight through the driver instead (COPY and commit on a connection of its
    own): what the machine allows, measured beside the API."""
    with httpx.Client(base_url=base_url, timeout=60) as api:
        run_ids = [logged_run(api, f"writer {n}") for n in range(writers)]
    if processes:
        context = multiprocessing.get_context("spawn")
        make, start, results = context.Process, context.Barrier(writers), context.Queue()
    else:
        make, start, results = threading.Thread, threading.Barrier(writers), queue.Queue()
    workers = [make(target=_writer, args=(base_url, index, writers, run_id, requests, pace, start, results, bare))
               for index, run_id in enumerate(run_ids)]
    for worker in workers:
        worker.start()
    samples = [sample for _ in workers for sample in results.get()]
    for worker in workers:
        worker.join()
    return samples


def _writer(base_url: str, index: int, writers: int, run_id: int, requests: int, pace: float | None,
            start: Any, results: Any, bare: str | None) -> None:
    """One writer of `concurrent_small_ingest`: its request times, in seconds, put on ``results``."""
    samples = []
    with contextlib.ExitStack() as stack:
        if bare:
            connection = stack.enter_context(psycopg.connect(_driver_url(bare)))
            stamp = datetime.now(UTC)

            def write(request: int) -> None:
                _copy_rows(connection, [(run_id, key, step, value, stamp) for key, step, value in request_points(10, request)])
        else:
            api = stack.enter_context(httpx.Client(base_url=base_url, timeout=60))

            def write(request: int) -> None:
                points = [{"key": k, "step": s, "value": v} for k, s, v in request_points(10, request)]
                api.post(f"/runs/{run_id}/metrics", json={"points": points}).raise_for_status()
        start.wait()
        due = time.perf_counter() + (pace or 0) * index / writers
        for request in range(requests):
            if pace is not None:
                time.sleep(max(0.0, due - time.perf_counter()))
                due += pace
            started = time.perf_counter()
            write(request)
            samples.append(time.perf_counter() - started)
        # Every writer waits for the last one before leaving: a process that exits (its interpreter's
        # teardown) would take the cores from the others' last requests.
        start.wait()
    results.put(samples)


def level_crossing(api: httpx.Client, runs: int) -> dict[str, Any]:
    """The 10-point request (10 keys, one step) that takes each key's series to a new rollup level over
    stored points (steps 64, 256, 1,024: ``server.store.rollups.width``), against the request of the step
    before it, in ``runs`` runs each (the steps below are written first in one untimed request)."""
    found: dict[str, Any] = {}
    for level, width in ((1, 64), (2, 256), (3, 1024)):
        before, crossing = [], []
        for n in range(runs):
            run_id = logged_run(api, f"level {level} #{n}")
            keys = [f"metric/k{k}" for k in range(10)]
            history = [{"key": key, "step": step, "value": random.random()} for step in range(width - 1) for key in keys]
            api.post(f"/runs/{run_id}/metrics", json={"points": history}).raise_for_status()
            for step, samples in ((width - 1, before), (width, crossing)):
                points = [{"key": key, "step": step, "value": random.random()} for key in keys]
                started = time.perf_counter()
                api.post(f"/runs/{run_id}/metrics", json={"points": points}).raise_for_status()
                samples.append(time.perf_counter() - started)
        found[f"level_{level}"] = {
            "step": width, "step_before_ms_p50": round(statistics.median(before) * 1000, 2),
            "crossing_ms_p50": round(statistics.median(crossing) * 1000, 2), "runs": runs,
        }
    return found


LIST_FILTERS = {
    "none": {}, "experiment": {"experiment": "exp3"}, "status": {"status": "failed"}, "method": {"method": "joint"},
    "dataset": {"dataset": "avmnist"}, "fusion": {"fusion": "film"},
}


def filtered_list(api: httpx.Client, requests: int) -> dict[str, dict[str, float]]:
    return {
        name: percentiles(timed(lambda params=params: api.get("/runs", params=params), requests))
        for name, params in LIST_FILTERS.items()
    }


def both_backends(options: argparse.Namespace) -> dict[str, Any]:
    """Ingest against the bare write, concurrent small ingests and filtered lists, on SQLite and PostgreSQL
    (or on those ``--backends`` names)."""
    results: dict[str, Any] = {}
    for dialect in options.backends:
        with contextlib.ExitStack() as cleanup:
            home = Path(cleanup.enter_context(tempfile.TemporaryDirectory()))
            url = f"sqlite:///{home / 'miles.db'}" if dialect == "sqlite" else cleanup.enter_context(fresh_postgres())
            stack = MilesStack(home=home, database_url=migrated(url), redis=None)
            server = stack.start_server("--log-level", "warning", wait=False)
            cleanup.callback(stack.close)
            server.wait_ready(options.start_timeout)
            base_url = f"{server.url}/api/v1"
            api = cleanup.enter_context(httpx.Client(base_url=base_url, timeout=120))
            found: dict[str, Any] = {"ingest_vs_bare": [
                ingest_vs_bare(api, url, dialect, size, requests)
                for size, requests in ((10, options.small_requests), (1000, 50), (50_000, 4))
            ]}
            found["level_crossing"] = level_crossing(api, 20)
            found["concurrent_small_ingest"] = {
                "saturated": concurrent_small_ingest(base_url, options.writers, options.small_requests // 4, None),
                "paced": concurrent_small_ingest(base_url, options.writers, options.small_requests // 4, options.pace),
                "paced_processes": paced_side_by_side(
                    base_url, options.writers, options.small_requests // 4, options.pace, options.paced_rounds,
                    bare=url if dialect == "postgresql" else None,
                ),
            }
            found["filtered_list"] = {}
            stored = 0
            for runs_count in options.list_runs:
                store_runs(url, runs_count - stored, offset=stored)
                stored = runs_count
                found["filtered_list"][str(runs_count)] = filtered_list(api, options.list_requests)
            results[dialect] = found
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--small-requests", type=int, default=400, help="10-point requests (a quarter per concurrent writer).")
    parser.add_argument("--writers", type=int, default=8, help="Concurrent 10-point writers, each into its own run.")
    parser.add_argument("--pace", type=float, default=0.05,
                        help="Seconds between a paced writer's 10-point requests (0.05: 20 steps a second each).")
    parser.add_argument("--paced-rounds", type=int, default=3,
                        help="Rounds of the paced writers as processes, through the API and the driver in turn.")
    parser.add_argument("--list-runs", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--list-requests", type=int, default=200)
    parser.add_argument("--only-both-backends", action="store_true", help="Skip the PostgreSQL-only part above.")
    parser.add_argument("--backends", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"],
                        help="The backends of the part on both backends (default: both).")
    parser.add_argument("--start-timeout", type=float, default=60,
                        help="Seconds to wait for each server to answer (longer on a loaded machine).")
    options = parser.parse_args()
    if options.only_both_backends:
        print(json.dumps({"machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)},
                          **both_backends(options)}, indent=2))
        return

    with fresh_postgres() as url, tempfile.TemporaryDirectory() as home:
        stack = MilesStack(home=Path(home), database_url=migrated(url), redis=None)
        server = stack.start_server("--log-level", "warning")
        with contextlib.closing(stack), httpx.Client(base_url=f"{server.url}/api/v1", timeout=120) as api:
            run_id, ingest = bench_ingest(api, options.points, options.batch)
            downsample = percentiles(timed(
                lambda: api.get(f"/runs/{run_id}/metrics", params={"keys": "loss/train", "max_points": 2000}), 50
            ))
            returned = len(api.get(f"/runs/{run_id}/metrics", params={"max_points": 2000}).json()["series"]["loss/train"]["steps"])
            store_runs(url, options.runs)
            first = api.get("/runs").json()
            deep_cursor = first["next_cursor"]
            for _ in range(100):  # page 101
                deep_cursor = api.get("/runs", params={"cursor": deep_cursor}).json()["next_cursor"]
            listing = {
                "runs": options.runs + 1, "page_size": 50,
                "first_page": percentiles(timed(lambda: api.get("/runs"), options.requests)),
                "page_101": percentiles(timed(lambda: api.get("/runs", params={"cursor": deep_cursor}), options.requests)),
                "filtered": percentiles(timed(
                    lambda: api.get("/runs", params={"status": "succeeded", "method": "miles", "tag": "seed3"}),
                    options.requests,
                )),
            }
        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
            postgres = conn.execute("SHOW server_version").fetchone()[0]
    print(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "postgresql": postgres},
        "ingest": ingest,
        "list_runs": listing,
        "downsample": {"series_points": options.points, "max_points": 2000, "returned": returned, **downsample},
        **both_backends(options),
    }, indent=2))


if __name__ == "__main__":
    main()
