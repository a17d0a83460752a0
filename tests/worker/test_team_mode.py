"""Team mode, end to end: PostgreSQL, the suite's own Redis, `miles server` and `miles worker --cpu` as processes.

One server and one worker serve every test of this module (they start in seconds, not
milliseconds); each test submits its own runs.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from server.db import Database
from server.models import Metric
from tests.conftest import fresh_postgres, migrated
from tests.services import MilesStack, SseMessage, running_redis, tiny_config, training_epochs

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilesStack]:
    home = tmp_path_factory.mktemp("team")
    with (
        fresh_postgres() as url,
        running_redis(home) as redis,
        MilesStack(home=home, database_url=migrated(url), redis=redis).serving() as stack,
    ):
        yield stack


def test_a_submitted_run_completes_with_every_epoch_in_the_database_and_in_the_stream(stack):
    run = stack.submit(tiny_config(epochs=5))

    messages = list(stack.stream(run["id"]))

    assert training_epochs(messages) == [1, 2, 3, 4, 5]
    assert [m.event for m in messages][0] == "status" and messages[-1].data == {"status": "succeeded"}
    assert messages[0].retry is not None
    statuses = [m.data["status"] for m in messages if m.event == "status"]
    assert statuses[-1] == "succeeded" and "running" in statuses
    kinds = [m.data["kind"] for m in messages if m.event == "run_event"]
    assert kinds[0] == "run.started" and kinds[-1] == "run.finished" and kinds.count("miles.decision") == 5
    # The test metrics of the last epoch arrive at the end, for a step already sent.
    late = [m for m in messages if m.event == "epoch" and "metric/test/fused" in m.data["metrics"]]
    assert late and all(m.data["step"] <= 5 for m in late)
    database = Database(stack.database_url)
    with database.transaction(write=False) as session:
        steps = session.execute(
            select(Metric.step, func.count()).where(Metric.run_id == run["id"], Metric.key == "loss/train").group_by(Metric.step)
        ).all()
    database.dispose()
    assert sorted(steps) == [(step, 1) for step in range(1, 6)]
    finished = stack.run(run["id"])
    assert finished["progress"] == {"epoch": 5, "epochs": 5} and finished["summary"]["epochs_completed"] == 5
    assert finished["worker"] and finished["attempts"] == 1 and finished["error"] is None


def test_a_stream_resumed_with_last_event_id_misses_nothing_and_repeats_nothing(stack):
    run = stack.submit(tiny_config(epochs=30))  # long enough to be training when the client drops
    first: list[SseMessage] = []
    for message in stack.stream(run["id"]):  # disconnect mid-run, after the second epoch
        first.append(message)
        if message.event == "epoch" and message.data["step"] == 2:
            break
    assert stack.run(run["id"])["status"] == "running", "the run should still be training"

    rest = list(stack.stream(run["id"], headers={"Last-Event-ID": first[-1].id}))

    both = first + rest
    assert training_epochs(both) == list(range(1, 31))
    # Epochs and system samples (their steps are seconds): every stored point once, across the reconnect.
    points = [(key, m.data["step"]) for m in both if m.event in ("epoch", "system") for key in m.data["metrics"]]
    assert len(points) == len(set(points)), "a point was sent twice"
    event_ids = [m.data["id"] for m in both if m.event == "run_event"]
    assert event_ids == sorted(set(event_ids)), "an event was sent twice or out of order"
    with stack.api as api:
        stored = api.get(f"/runs/{run['id']}/events").json()["items"]
        series = api.get(f"/runs/{run['id']}/metrics").json()["series"]
    assert event_ids == [event["id"] for event in stored]
    assert set(points) == {(key, step) for key, s in series.items() for step in s["steps"]}


def test_a_cancelled_run_stops_within_two_seconds_and_the_worker_takes_the_next_run(stack):
    long = stack.submit(tiny_config(epochs=200))
    waiting = stack.submit(tiny_config(epochs=2))
    stack.wait_for_status(long["id"], "running")
    for _ in itertools.takewhile(lambda m: m.event != "epoch", stack.stream(long["id"])):
        pass  # until its first epoch: it is training

    asked = time.monotonic()
    with stack.api as api:
        assert api.post(f"/runs/{long['id']}/cancel").json()["cancel_requested"] is True
    cancelled = stack.wait_for_status(long["id"], "cancelled", timeout=10)

    assert time.monotonic() - asked < 2.0
    assert cancelled["progress"]["epoch"] < 200
    assert stack.wait_for_status(waiting["id"], "succeeded", timeout=60)["status"] == "succeeded"


def test_a_grid_submitted_whole_is_trained_by_the_worker_and_its_table_fills_in(stack):
    config = {key: value for key, value in tiny_config(epochs=2).items() if key != "method"}
    body = {"experiment": "team grid", "grid": {"config": config, "methods": ["joint", "miles"], "fusions": ["concat", "sum"], "seeds": [0, 1]}}
    with stack.api as api:
        response = api.post("/grids", json=body)
    assert response.status_code == 201, response.text
    cells = response.json()["cells"]
    assert len(cells) == 8

    done = [stack.wait_for_status(cell["run"]["id"], "succeeded", "failed", timeout=180) for cell in cells]

    assert [run["status"] for run in done] == ["succeeded"] * 8, [run["error"] for run in done]
    with stack.api as api:
        table = api.get("/results", params={"experiment": "team grid"}).json()
    (group,) = table["groups"]
    assert [(row["method"], row["fusion"], row["seeds"]) for row in group["rows"]] == [
        ("joint", "concat", 2), ("joint", "sum", 2), ("miles", "concat", 2), ("miles", "sum", 2)]
    by_cell = {cell["key"]: run for cell, run in zip(cells, done, strict=True)}
    fused = [by_cell[f"miles/sum/seed{seed}"]["summary"]["final/metric/test/fused"] for seed in (0, 1)]
    assert group["rows"][3]["last"]["fused"]["mean"] == pytest.approx(sum(fused) / 2)
    assert table["counted"] == 8 and all(row["waiting"] == {} for row in group["rows"])
