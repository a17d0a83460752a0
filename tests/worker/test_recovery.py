"""Nothing is lost when a worker machine dies or Redis is down: PostgreSQL, Redis and the miles processes."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from server.db import Database
from server.models import Metric
from tests.services import tiny_config, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def test_a_run_whose_worker_was_killed_resumes_from_its_checkpoint_on_a_new_worker(
    miles_stack, postgres_database, redis_process,
):
    stack = miles_stack(database_url=postgres_database, redis=redis_process, heartbeat_timeout=3, sweep_interval=0.5)
    _, lost = stack.start("--cpu")
    run = stack.submit(tiny_config(epochs=40))  # long enough to be training when its worker dies
    wait_until(lambda: stack.run(run["id"])["progress"]["epoch"] >= 3, 60, "three epochs trained")

    lost.kill()  # SIGKILL to the supervisor and its worker process at once
    assert stack.run(run["id"])["status"] == "running"
    stack.start_worker("--cpu")
    finished = stack.wait_for_status(run["id"], "succeeded", "failed", timeout=120)

    assert finished["status"] == "succeeded" and finished["attempts"] == 2
    with stack.api as api:
        notes = [(e["kind"], e["message"]) for e in api.get(f"/runs/{run['id']}/events").json()["items"]]
    assert any(kind == "run.requeued" and "lost: no heartbeat" in message for kind, message in notes)
    resumed = [message for kind, message in notes if kind == "run.resumed"]
    assert len(resumed) == 1 and not resumed[0].startswith("resumed after epoch 0")
    database = Database(postgres_database)
    with database.transaction(write=False) as session:
        counts = session.execute(
            select(Metric.key, Metric.step, func.count()).where(Metric.run_id == run["id"]).group_by(Metric.key, Metric.step)
        ).all()
    database.dispose()
    assert {count for _, _, count in counts} == {1}
    assert sorted(step for key, step, _ in counts if key == "loss/train") == list(range(1, 41))


def test_a_run_submitted_while_redis_is_down_is_kept_and_runs_once_redis_is_back(
    miles_stack, postgres_database, redis_process,
):
    stack = miles_stack(database_url=postgres_database, redis=redis_process)
    stack.start("--cpu")
    redis_process.stop()

    with stack.api as api:
        response = api.post("/runs", json={"config": tiny_config(epochs=2)})
        assert response.status_code == 503
        assert "could not be enqueued" in response.json()["detail"] and "once the queue is reachable" in response.json()["detail"]
        [kept] = api.get("/runs").json()["items"]
    assert kept["status"] == "queued"

    redis_process.start()
    assert stack.wait_for_status(kept["id"], "succeeded", timeout=90)["status"] == "succeeded"
