"""GET /runs/{id}/stream over HTTP: the messages of the contract, their ids, refusals, lifetime and shutdown."""

from __future__ import annotations

import contextlib
import signal
import threading
import time

import httpx
import pytest

from server.models import utcnow
from server.store import events, metrics, runs
from tests.services import read_sse, tiny_config, wait_until

RUNS = "/api/v1/runs"


def messages(client, url: str, **kwargs) -> list:
    with client.stream("GET", url, **kwargs) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(read_sse(response.iter_lines()))


def finished_run(client, database) -> int:
    """A logged run with two steps of points and one event, then succeeded."""
    run_id = client.post(RUNS, json={"execute": False}).json()["id"]
    now = utcnow()
    with database.transaction() as session:
        metrics.ingest(session=session, run_id=run_id, points=[
            metrics.Point("loss", 1, 0.5, now), metrics.Point("acc", 1, 0.6, now), metrics.Point("loss", 2, 0.4, now),
        ])
        events.add(session=session, run_id=run_id, events=[events.NewEvent(step=2, kind="note", message="hello")])
        runs.set_status(session=session, run=runs.get(session=session, run_id=run_id), status="succeeded")
    return run_id


def test_a_finished_run_streams_its_status_points_and_events_then_ends(client, database):
    run_id = finished_run(client, database)

    received = messages(client, f"{RUNS}/{run_id}/stream")

    assert [m.event for m in received] == ["status", "epoch", "epoch", "run_event", "end"]
    status, first, second, note, end = received
    assert status.data["status"] == "succeeded" and status.retry == 2000 and status.data["finished_at"]
    assert set(status.data) == {"status", "epoch", "epochs", "error", "error_detail", "summary", "worker", "machine",
                                "started_at", "finished_at"}
    assert (first.data, second.data) == ({"step": 1, "metrics": {"acc": 0.6, "loss": 0.5}}, {"step": 2, "metrics": {"loss": 0.4}})
    assert set(note.data) == {"id", "step", "time", "kind", "message", "data"} and note.data["message"] == "hello"
    assert end.data == {"status": "succeeded"}
    # A logged run's ids also say up to which write its updates were sent (~0: none was needed).
    event = note.data["id"]
    assert [m.id for m in received] == ["-1:0", "1:0~0", "2:0~0", f"2:{event}~0", f"2:{event}~0"]


def test_a_client_resuming_after_the_last_id_gets_only_what_followed(client, database):
    run_id = finished_run(client, database)
    received = messages(client, f"{RUNS}/{run_id}/stream", headers={"Last-Event-ID": "1:0"})
    assert [m.event for m in received] == ["status", "epoch", "run_event", "end"]
    assert received[1].data["step"] == 2


def test_a_page_that_loaded_the_history_names_where_it_stands(client, database):
    run_id = finished_run(client, database)
    received = messages(client, f"{RUNS}/{run_id}/stream", params={"since_step": 2, "after_event": 10**6})
    assert [m.event for m in received] == ["status", "end"]


def test_a_stream_past_its_lifetime_tells_the_browser_to_reconnect(make_client, make_settings):
    client = make_client(make_settings(stream_lifetime=1))
    run_id = client.post(RUNS, json={"execute": False}).json()["id"]  # running until its client says otherwise

    started = time.monotonic()
    received = messages(client, f"{RUNS}/{run_id}/stream")

    assert [m.event for m in received] == ["status", "reconnect"]
    assert 1 <= time.monotonic() - started < 5 and received[-1].id == "-1:0~0"  # a logged run: its write too


def test_an_unknown_run_has_no_stream(client):
    response = client.get(f"{RUNS}/424242/stream")
    assert response.status_code == 404 and response.json()["detail"] == "run 424242 not found"


def test_a_last_event_id_the_stream_never_sent_is_refused_by_name(client):
    run_id = client.post(RUNS, json={"execute": False}).json()["id"]
    response = client.get(f"{RUNS}/{run_id}/stream", headers={"Last-Event-ID": "yesterday"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Last-Event-ID"


@pytest.mark.slow
def test_the_server_stops_promptly_with_streams_open_and_tells_them_to_reconnect(miles_stack, sqlite_database):
    stack = miles_stack(database_url=sqlite_database, redis=None)
    server = stack.start_server()
    run_id = stack.submit(tiny_config())["id"]  # no worker: it stays queued, its stream stays open
    received: list = []

    def listen() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server may close mid-read
            received.extend(stack.stream(run_id))  # extends as messages arrive

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    wait_until(lambda: received, 10, "the stream's first message")

    stopping = time.monotonic()
    assert server.stop(signal.SIGINT, timeout=10) == 0
    assert time.monotonic() - stopping < 5
    listener.join(5)
    assert [m.event for m in received] == ["status", "reconnect"]
