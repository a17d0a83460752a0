"""System metrics (sys/ keys, stepped in seconds) on the live stream: their own messages and cursor, apart
from the epochs' step order."""

from __future__ import annotations

from server.models import utcnow
from server.store import metrics, runs
from tests.server.api.test_api_stream import RUNS, messages


def logged_run_with_epochs_and_system_metrics(client, database) -> int:
    """A finished logged run: epochs 1 and 2, and system samples at seconds 0, 10 and 20."""
    run_id = client.post(RUNS, json={"execute": False}).json()["id"]
    now = utcnow()
    with database.transaction() as session:
        metrics.ingest(session=session, run_id=run_id, points=[
            metrics.Point("loss", 1, 0.5, now), metrics.Point("loss", 2, 0.4, now),
            metrics.Point("sys/cpu_percent", 0, 90.0, now), metrics.Point("sys/memory_mib", 0, 300.0, now),
            metrics.Point("sys/cpu_percent", 10, 95.0, now), metrics.Point("sys/cpu_percent", 20, 97.0, now),
        ])
        runs.set_status(session=session, run=runs.get(session=session, run_id=run_id), status="succeeded")
    return run_id


def test_system_samples_arrive_as_system_messages_in_seconds_and_epochs_keep_their_order(client, database):
    run_id = logged_run_with_epochs_and_system_metrics(client, database)

    received = messages(client, f"{RUNS}/{run_id}/stream")

    assert [m.event for m in received] == ["status", "epoch", "epoch", "system", "system", "system", "end"]
    assert [m.data for m in received if m.event == "epoch"] == [
        {"step": 1, "metrics": {"loss": 0.5}}, {"step": 2, "metrics": {"loss": 0.4}},
    ]
    assert [m.data for m in received if m.event == "system"] == [
        {"step": 0, "metrics": {"sys/cpu_percent": 90.0, "sys/memory_mib": 300.0}},
        {"step": 10, "metrics": {"sys/cpu_percent": 95.0}}, {"step": 20, "metrics": {"sys/cpu_percent": 97.0}},
    ]
    assert [m.id for m in received if m.event == "system"] == ["2:0~0/0", "2:0~0/10", "2:0~0/20"]


def test_resuming_after_a_system_message_sends_only_the_later_seconds(client, database):
    run_id = logged_run_with_epochs_and_system_metrics(client, database)

    received = messages(client, f"{RUNS}/{run_id}/stream", headers={"Last-Event-ID": "2:0/10"})

    assert [(m.event, m.data.get("step")) for m in received] == [("status", None), ("system", 20), ("end", None)]


def test_a_page_that_loaded_the_history_asks_for_the_seconds_after_it(client, database):
    run_id = logged_run_with_epochs_and_system_metrics(client, database)

    received = messages(client, f"{RUNS}/{run_id}/stream", params={"since_step": 1, "since_system": 0})

    assert [(m.event, m.data.get("step")) for m in received] == [
        ("status", None), ("epoch", 2), ("system", 10), ("system", 20), ("end", None),
    ]


def test_a_cursor_with_a_malformed_system_part_is_refused(client, database):
    run_id = logged_run_with_epochs_and_system_metrics(client, database)
    response = client.get(f"{RUNS}/{run_id}/stream", headers={"Last-Event-ID": "2:0/x"})
    assert response.status_code == 422 and "Last-Event-ID" in response.text


def test_system_points_posted_to_a_logged_run_do_not_move_its_progress(client):
    run_id = client.post(RUNS, json={"execute": False}).json()["id"]
    points = [{"key": "loss", "step": 3, "value": 0.2}, {"key": "sys/cpu_percent", "step": 600, "value": 80.0}]

    assert client.post(f"{RUNS}/{run_id}/metrics", json={"points": points}).status_code == 200

    assert client.get(f"{RUNS}/{run_id}").json()["progress"]["epoch"] == 3
