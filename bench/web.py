"""The pages in a real browser: bytes transferred and time to the first drawn chart.

    python bench/web.py                  # --epochs 40 --compare-runs 10 --rounds 5

Prints JSON. Starts ``miles server`` and ``miles worker --cpu`` in local mode (SQLite), as
the tests do, trains one run of ``--epochs`` epochs to the end, copies it in the database
to have ``--compare-runs`` finished runs, and loads in headless Chromium (Playwright,
``/usr/bin/chromium``):

- the run page of the finished run (``/runs/<id>``);
- the compare page of the runs (``/compare?ids=...``).

Each page is loaded ``--rounds`` times in a fresh browser context (an empty cache: what a
first visit costs), then once more in the same context (a second visit, from the cache).
Per page: ``bytes``, the bytes received over the network (compressed bodies and headers,
Chromium's ``encodedDataLength``), and ``first_chart_ms``, from the start of the navigation
to the moment the first Plotly trace is in the document (a MutationObserver, timed with
``performance.now()``, whose origin is the navigation's start).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ would come first on the path; the repository root gives `tests`.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from playwright.sync_api import Browser, sync_playwright  # noqa: E402
from sqlalchemy import inspect, text  # noqa: E402

from server.db import Database  # noqa: E402
from tests.conftest import migrated  # noqa: E402
from tests.services import MilesStack, tiny_config  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
FIRST_CHART = """
window.__firstChart = null;
new MutationObserver((_, observer) => {
  if (document.querySelector(".js-plotly-plot .scatterlayer .trace")) {
    window.__firstChart = performance.now();
    observer.disconnect();
  }
}).observe(document, { subtree: true, childList: true });
"""
COPIED = ("metric", "latest_metric", "metric_rollup", "run_event", "run_tag")


def copy_run(database: Database, run_id: int) -> int:
    """A copy of the finished run ``run_id`` with all its points, rollups, events and tags; its id."""
    names = inspect(database.engine)
    with database.engine.begin() as connection:
        columns = ", ".join(c["name"] for c in names.get_columns("run") if c["name"] != "id")
        new_id = connection.execute(text(f"INSERT INTO run ({columns}) SELECT {columns} FROM run WHERE id = :id"),
                                    {"id": run_id}).lastrowid
        for table in COPIED:
            rest = ", ".join(c["name"] for c in names.get_columns(table) if c["name"] not in ("run_id", "id"))
            connection.execute(text(f"INSERT INTO {table} (run_id, {rest}) SELECT :new, {rest} FROM {table} WHERE run_id = :id"),
                               {"new": new_id, "id": run_id})
    return new_id


def load(browser: Browser, url: str, rounds: int) -> dict[str, Any]:
    """``rounds`` first visits (each in a fresh context), then a second visit of the last one's context."""
    first_bytes, first_ms = [], []
    for round_ in range(rounds):
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        context.add_init_script(FIRST_CHART)
        page = context.new_page()
        received = [0]
        session = context.new_cdp_session(page)
        session.send("Network.enable")
        session.on("Network.loadingFinished", lambda event, box=received: box.__setitem__(0, box[0] + event["encodedDataLength"]))

        def visit(page=page, received=received) -> tuple[int, float]:
            received[0] = 0
            page.goto(url)
            page.wait_for_function("() => window.__firstChart !== null", timeout=30_000)
            page.wait_for_load_state("networkidle")
            return received[0], page.evaluate("window.__firstChart")

        got, ms = visit()
        first_bytes.append(got)
        first_ms.append(ms)
        if round_ == rounds - 1:
            again_bytes, again_ms = visit()
        context.close()
    return {
        "first_visit": {"bytes_median": int(statistics.median(first_bytes)), "first_chart_ms_median": round(statistics.median(first_ms)),
                        "first_chart_ms_max": round(max(first_ms)), "rounds": rounds},
        "second_visit": {"bytes": again_bytes, "first_chart_ms": round(again_ms)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--compare-runs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": {"cpu_count": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)}}
    with tempfile.TemporaryDirectory(prefix="miles-bench-") as scratch:
        home = Path(scratch)
        stack = MilesStack(home=home, database_url=migrated(f"sqlite:///{home / 'miles.db'}"), redis=None)
        with contextlib.closing(stack):
            stack.start("--cpu")
            run = stack.submit(tiny_config(epochs=args.epochs), name=f"{args.epochs} epochs")
            done = stack.wait_for_status(run["id"], "succeeded", "failed", timeout=1200)
            assert done["status"] == "succeeded", done["error"]
            database = Database(stack.database_url)
            ids = [run["id"], *(copy_run(database, run["id"]) for _ in range(args.compare_runs - 1))]
            database.dispose()
            with stack.api as api:
                points = sum(len(s["steps"]) for s in api.get(f"/runs/{run['id']}/metrics").json()["series"].values())
            results["run"] = {"epochs": args.epochs, "points": points}
            base = stack.server.url
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                results["run_page"] = load(browser, f"{base}/runs/{run['id']}", args.rounds)
                results["compare_page"] = {"runs": len(ids), **load(browser, f"{base}/compare?ids={','.join(map(str, ids))}", args.rounds)}
                browser.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
