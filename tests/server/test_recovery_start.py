"""`miles server` at start-up: every queued run enqueued once, and when the broker is down, the rest deferred."""

from __future__ import annotations

import json
import logging

import pytest
import redis

from server import recovery
from server.dispatch import BrokerUnavailable
from server.queue import CeleryDispatcher
from server.settings import Settings
from server.store import runs
from tests.conftest import free_port
from trainer.config import TrainConfig


def queued_runs(database, count: int) -> list[int]:
    with database.transaction() as session:
        return [
            runs.create(session=session, config=TrainConfig(dataset="mfeat", device="cpu"), execute=True).id
            for _ in range(count)
        ]


class FailsAfter(CeleryDispatcher):
    """Sends ``working`` messages, then finds the broker gone."""

    def __init__(self, settings: Settings, working: int) -> None:
        super().__init__(settings)
        self.sent: list[int] = []
        self.deferred: dict[int, str] = {}
        self.working = working

    def send(self, run_id: int, queue: str) -> None:
        if len(self.sent) >= self.working:
            raise BrokerUnavailable("the job queue at redis://nowhere cannot be reached (test)")
        self.sent.append(run_id)

    def defer(self, runs: dict[int, str]) -> None:
        self.deferred.update(runs)


@pytest.mark.redis
def test_every_queued_run_is_enqueued_once(database, tmp_path, redis_process, caplog):
    ids = queued_runs(database, 3)
    settings = Settings(home=tmp_path, database_url=database.url, redis_url=redis_process.url)
    with caplog.at_level(logging.INFO, "miles.recovery"):
        recovery.at_server_start(settings, database, CeleryDispatcher(settings))
    sent = [json.loads(raw)["headers"]["argsrepr"] for raw in redis.Redis(port=redis_process.port).lrange("cpu", 0, -1)]
    assert sorted(sent) == sorted(f"[{i}]" for i in ids)
    assert "start-up: 3 queued runs enqueued, 0 lost runs recovered" in caplog.text


def test_a_broker_lost_part_way_defers_the_rest_and_logs_what_was_sent(database, tmp_path, caplog):
    ids = queued_runs(database, 3)
    settings = Settings(home=tmp_path, database_url=database.url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    dispatcher = FailsAfter(settings, working=1)
    with caplog.at_level(logging.INFO, "miles.recovery"):
        recovery.at_server_start(settings, database, dispatcher)
    assert dispatcher.sent == ids[:1] and dispatcher.deferred == {i: "cpu" for i in ids[1:]}
    assert "(1 of 3 queued runs enqueued); the other 2 will be enqueued once it is back" in caplog.text
    assert "start-up: 1 queued runs enqueued" in caplog.text


def test_a_broker_down_from_the_start_defers_every_queued_run(database, tmp_path, caplog):
    ids = queued_runs(database, 2)
    settings = Settings(home=tmp_path, database_url=database.url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    dispatcher = CeleryDispatcher(settings)  # a real sender, to a port nothing listens on
    with caplog.at_level(logging.INFO, "miles.recovery"):
        recovery.at_server_start(settings, database, dispatcher)
    assert dispatcher.pending == {i: "cpu" for i in ids}
    assert "(0 of 2 queued runs enqueued)" in caplog.text and "queued runs enqueued, " not in caplog.text
