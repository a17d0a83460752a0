"""The job queue seen from the server: sending by task name, failing fast when the broker is down, re-enqueueing."""

from __future__ import annotations

import json
import time

import pytest
import redis
from click.testing import CliRunner

from server import queue
from server.dispatch import BrokerUnavailable
from server.queue import CeleryDispatcher
from server.settings import Settings
from server.store import runs
from tests.conftest import free_port
from tests.services import wait_until
from trainer.config import TrainConfig

pytestmark = pytest.mark.redis


def waiting(redis_process, name: str) -> list[dict]:
    """The messages waiting in a Redis queue, decoded."""
    client = redis.Redis(port=redis_process.port)
    return [json.loads(raw) for raw in client.lrange(name, 0, -1)]


def test_a_run_is_sent_by_task_name_to_its_queue(tmp_path, redis_process):
    CeleryDispatcher(Settings(home=tmp_path, redis_url=redis_process.url)).enqueue(7, "gpu")
    [message] = waiting(redis_process, "gpu")
    assert message["headers"]["task"] == "miles.run_training" and message["headers"]["argsrepr"] == "[7]"
    assert waiting(redis_process, "cpu") == []


def test_an_unreachable_broker_is_reported_within_two_seconds(tmp_path):
    dispatcher = CeleryDispatcher(Settings(home=tmp_path, redis_url=f"redis://:secret@127.0.0.1:{free_port()}/0"))
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as refused:
        dispatcher.enqueue(3, "cpu")
    assert time.monotonic() - started < 2.0
    assert "cannot be reached" in str(refused.value) and "secret" not in str(refused.value)
    assert dispatcher.pending == {3: "cpu"}


def test_runs_refused_during_an_outage_are_enqueued_once_the_broker_is_back(tmp_path, redis_process, monkeypatch):
    monkeypatch.setattr(queue, "RETRY_EVERY", 0.2)
    dispatcher = CeleryDispatcher(Settings(home=tmp_path, redis_url=redis_process.url))
    redis_process.stop()
    with pytest.raises(BrokerUnavailable):
        dispatcher.enqueue(5, "cpu")
    redis_process.start()
    wait_until(lambda: not dispatcher.pending, 10, "the refused run to be enqueued", every=0.1)
    assert dispatcher.pending == {}
    assert [m["headers"]["argsrepr"] for m in waiting(redis_process, "cpu")] == ["[5]"]


def test_miles_requeue_enqueues_every_queued_run(tmp_path, redis_process, sqlite_database, monkeypatch):
    from server.cli import main
    from server.db import Database

    database = Database(sqlite_database)
    with database.transaction() as session:
        gpu = runs.create(session=session, config=TrainConfig(dataset="mfeat", device="cuda"), execute=True).id
        cpu = runs.create(session=session, config=TrainConfig(dataset="mfeat", device="cpu"), execute=True).id
        runs.create(session=session, config=None, execute=False)
    database.dispose()
    env = {"MILES_HOME": str(tmp_path), "MILES_DATABASE_URL": sqlite_database, "MILES_REDIS_URL": redis_process.url}

    result = CliRunner().invoke(main, ["requeue"], env=env)

    assert result.exit_code == 0, result.output
    assert "2 queued run(s) enqueued" in result.output
    assert [m["headers"]["argsrepr"] for m in waiting(redis_process, "gpu")] == [f"[{gpu}]"]
    assert [m["headers"]["argsrepr"] for m in waiting(redis_process, "cpu")] == [f"[{cpu}]"]


def test_miles_requeue_says_when_the_broker_is_down(tmp_path, sqlite_database):
    from server.cli import main
    from server.db import Database

    database = Database(sqlite_database)
    with database.transaction() as session:
        runs.create(session=session, config=TrainConfig(dataset="mfeat", device="cpu"), execute=True)
    database.dispose()
    env = {"MILES_HOME": str(tmp_path), "MILES_DATABASE_URL": sqlite_database,
           "MILES_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}

    result = CliRunner().invoke(main, ["requeue"], env=env)

    assert result.exit_code == 1
    assert "cannot be reached" in result.output and "(0 of 1 queued runs enqueued)" in result.output
