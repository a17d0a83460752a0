"""Size of the runs list (``GET /api/v1/runs``) when runs carry big params and many metric keys; prints JSON.

Builds the app in this process on a fresh SQLite file, logs ``--runs`` runs, each with
params of about ``--params-bytes`` bytes of JSON and one point for each of ``--keys``
metric keys, then measures the list's response: its bytes and how long it takes.

    python bench/list_size.py            # --runs 5 --params-bytes 60000 --keys 2000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from server import migrate  # noqa: E402
from server.app import create_app  # noqa: E402
from server.db import Database  # noqa: E402
from server.settings import Settings  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402


def params_of(size: int) -> dict[str, str]:
    """Hyperparameters whose JSON is about ``size`` bytes: notes of 1,000 characters each."""
    return {f"note_{i}": "x" * 1000 for i in range(max(1, size // 1014))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--params-bytes", type=int, default=60_000)
    parser.add_argument("--keys", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), database_url=f"sqlite:///{home}/miles.db", auth="off")
        database = Database(settings.database_url)
        migrate.upgrade(database.engine)
        database.dispose()
        with TestClient(create_app(settings), base_url="http://localhost") as client:
            stored = []
            for index in range(args.runs):
                created = client.post("/api/v1/runs", json={
                    "execute": False, "name": f"big {index}", "params": params_of(args.params_bytes),
                })
                stored.append(created.status_code)
                if created.status_code != 201:
                    continue
                points = [{"key": f"metric/val/class_{k}", "step": 1, "value": k / args.keys} for k in range(args.keys)]
                points += [{"key": "util/delta", "step": 1, "value": 0.3}, {"key": "metric/val/fused", "step": 1, "value": 0.9}]
                client.post(f"/api/v1/runs/{created.json()['id']}/metrics", json={"points": points}).raise_for_status()
            seconds = []
            for _ in range(args.requests):
                started = time.perf_counter()
                response = client.get("/api/v1/runs")
                seconds.append(time.perf_counter() - started)
            seconds.sort()
            body = response.content
            print(json.dumps({
                "runs": args.runs, "params_bytes": args.params_bytes, "keys_per_run": args.keys,
                "submissions": {str(code): stored.count(code) for code in sorted(set(stored))},
                "list_bytes": len(body),
                "latest_keys_per_row": [len(item["latest"]) for item in response.json()["items"]],
                "list_median_ms": round(seconds[len(seconds) // 2] * 1000, 1),
            }, indent=2))


if __name__ == "__main__":
    main()
