"""Benchmark of the REST API against PostgreSQL; prints JSON.

Starts ``miles server`` (uvicorn) on a fresh PostgreSQL database and measures, over HTTP:

- ingest: points per second through ``POST /runs/{id}/metrics`` in batches of 50,000
  (bodies encoded before the clock starts: this is the server's throughput);
- listing: p50/p99 of ``GET /runs`` (a page of 50, with tags and latest values) with
  10,000 runs stored, on the first page, a deep page and a filtered page;
- downsampling: p50/p99 of reading the 1,000,000-point series ingested above as at most
  2,000 points (``GET /runs/{id}/metrics?max_points=2000``).

    python bench/api.py                  # --points 1000000 --runs 10000 --requests 300
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ would come first on the path; the repository root gives `tests`.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from bench import stats  # noqa: E402
from server.db import Database  # noqa: E402
from server.models import LatestMetric, Run, RunTag  # noqa: E402
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


def store_runs(database_url: str, count: int) -> None:
    """``count`` runs with two tags and eight latest values each, written straight to the tables."""
    database = Database(database_url)
    statuses = ["succeeded"] * 6 + ["failed", "cancelled", "running", "queued"]
    methods = ["miles", "joint", "joint_aux"]
    start = datetime.now(UTC) - timedelta(days=30)
    keys = ["metric/val/fused", "metric/val/pix", "metric/val/fou", "util/pix", "util/fou", "util/delta",
            "loss/train", "loss/val"]
    with database.transaction() as session:
        for offset in range(0, count, 2000):
            rows = []
            for index in range(offset, min(count, offset + 2000)):
                method = methods[index % 3]
                rows.append({
                    "name": f"{method} seed {index % 5} #{index}", "status": statuses[index % len(statuses)],
                    "execute": True, "method": method, "dataset": "mfeat", "fusion": "concat", "seed": index % 5,
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
    database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    options = parser.parse_args()

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
    }, indent=2))


if __name__ == "__main__":
    main()
