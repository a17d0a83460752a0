"""A change committed through the API wakes the run's open streams at once: in-process in local mode,
through Redis in team mode, and only after its transaction has committed."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Iterator

import pytest

from server import live
from server.db import Database
from server.live import LocalNotices
from server.store import metrics
from tests.conftest import fresh_postgres, migrated
from tests.services import MilesStack, RedisProcess, running_redis


def test_a_notice_from_another_thread_wakes_a_local_watch_at_once(monkeypatch):
    monkeypatch.setattr(live, "POLL_INTERVAL", 30.0)

    async def scenario() -> tuple[bool, float, bool]:
        notices = LocalNotices()
        async with notices.watch(7) as watch, notices.watch(8) as other:
            started = time.monotonic()
            threading.Thread(target=notices.notify, args=(7, "epoch"), kwargs={"step": 1}).start()
            woke = await watch.wait()
            elapsed = time.monotonic() - started
            try:
                await asyncio.wait_for(other.wait(), 0.2)
                other_woke = True
            except TimeoutError:
                other_woke = False
        return woke, elapsed, other_woke

    woke, elapsed, other_woke = asyncio.run(scenario())
    assert woke and elapsed < 1.0
    assert not other_woke, "a notice wakes the streams of its own run only"


class Recorder:
    """Notices that record what the API sent and what the database held when it was sent."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.sent: list[tuple[int, str, dict, int]] = []

    def notify(self, run_id: int, kind: str, **fields) -> None:
        with self.database.transaction(write=False) as session:
            stored = sum(len(s.steps) for s in metrics.series(session=session, run_id=run_id).values())
        self.sent.append((run_id, kind, fields, stored))


def test_the_api_notifies_the_run_after_each_commit(client, database):
    recorder = Recorder(database)
    client.app.state.notices = recorder
    run_id = client.post("/api/v1/runs", json={"execute": False, "name": "notebook"}).json()["id"]
    client.post(f"/api/v1/runs/{run_id}/metrics", json={"points": [{"key": "loss", "step": 3, "value": 0.5}]})
    client.post(f"/api/v1/runs/{run_id}/metrics", json={"points": [{"key": "sys/cpu_percent", "step": 9, "value": 5}]})
    client.post(f"/api/v1/runs/{run_id}/events", json={"events": [{"kind": "note", "message": "hi"}]})
    client.patch(f"/api/v1/runs/{run_id}", json={"status": "succeeded"})
    # Each notice saw its own points committed (a fresh transaction read them).
    assert recorder.sent == [
        (run_id, "epoch", {"step": 3}, 1), (run_id, "system", {}, 2), (run_id, "event", {}, 2),
        (run_id, "status", {"status": "succeeded"}, 2),
    ]
    refused = client.post(f"/api/v1/runs/{run_id}/metrics", json={"points": [{"key": "loss", "step": -1, "value": 1.0}]})
    assert refused.status_code == 422 and len(recorder.sent) == 4, "a refused request notifies nobody"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["local", "team"])
def test_posted_points_of_a_logged_run_reach_an_open_stream_at_once_and_later_keys_as_updates(
    mode, miles_stack, tmp_path,
):
    with _backend(mode, tmp_path) as (url, redis):
        stack: MilesStack = miles_stack(database_url=migrated(url), redis=redis)
        stack.start_server()
        with stack.api as api:
            run_id = api.post("/runs", json={"execute": False, "name": "notebook"}).json()["id"]
            arrived: queue.Queue = queue.Queue()

            def follow() -> None:
                for message in stack.stream(run_id):
                    arrived.put(message)
                    if message.event == "end":
                        return

            threading.Thread(target=follow, daemon=True).start()
            assert arrived.get(timeout=10).event == "status"
            waits = []
            for step in (1, 2, 3):
                for key in ("loss/train", "metric/val"):
                    posted = time.monotonic()
                    api.post(f"/runs/{run_id}/metrics", json={"points": [{"key": key, "step": step, "value": step}]})
                    message = arrived.get(timeout=10)
                    while message.event == "status":  # the run's progress follows its steps
                        message = arrived.get(timeout=10)
                    waits.append(time.monotonic() - posted)
                    assert (message.event, message.data) == ("epoch", {"step": step, "metrics": {key: step}})
            api.patch(f"/runs/{run_id}", json={"status": "succeeded"})
            assert [arrived.get(timeout=10).event for _ in range(2)][-1] == "end"
        if mode == "team":  # without the notice, a stream reads every 2 s
            assert max(waits) < 1.5, waits


@contextlib.contextmanager
def _backend(mode: str, tmp_path) -> Iterator[tuple[str, RedisProcess | None]]:
    """SQLite without Redis (local mode), or PostgreSQL with the test's own Redis (team mode)."""
    if mode == "local":
        yield f"sqlite:///{tmp_path / 'miles.db'}", None
        return
    with fresh_postgres() as url, running_redis(tmp_path) as redis:
        yield url, redis
