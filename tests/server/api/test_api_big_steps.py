"""Steps up to 2**53 - 1 are valid everywhere: stored on both backends, and their ids resume a stream.

PostgreSQL's 32-bit integers used to turn a step of 2**31 on a logged run into a 500 (the
batch lost), and a ``Last-Event-ID`` naming an event id past 2**31 into a stream that
opened and then dropped.
"""

from __future__ import annotations

from tests.server.api.test_api_stream import finished_run, messages

RUNS = "/api/v1/runs"
BIG = 2**31  # the first step a 32-bit column cannot hold
LARGEST = 2**53 - 1  # the largest step the API accepts (a JavaScript number holds it exactly)


def test_a_logged_run_stores_a_step_past_32_bits_and_counts_it_as_its_progress(client):
    run_id = client.post(RUNS, json={"execute": False}).json()["id"]
    response = client.post(f"{RUNS}/{run_id}/metrics", json={"points": [
        {"key": "loss", "step": BIG, "value": 0.5}, {"key": "loss", "step": LARGEST, "value": 0.25},
    ]})
    assert response.status_code == 200, response.text
    run = client.get(f"{RUNS}/{run_id}").json()
    assert run["progress"]["epoch"] == LARGEST and run["latest"]["loss"] == {"step": LARGEST, "value": 0.25}
    series = client.get(f"{RUNS}/{run_id}/metrics", params={"keys": "loss"}).json()["series"]["loss"]
    assert series == {"steps": [BIG, LARGEST], "values": [0.5, 0.25]}


def test_an_event_at_a_step_past_32_bits_is_stored(client):
    run_id = client.post(RUNS, json={"execute": False}).json()["id"]
    response = client.post(f"{RUNS}/{run_id}/events", json={"events": [{"step": LARGEST, "kind": "note", "message": "far"}]})
    assert response.status_code == 200, response.text
    assert client.get(f"{RUNS}/{run_id}/events").json()["items"][0]["step"] == LARGEST


def test_a_stream_resumes_after_a_step_past_32_bits(client, database):
    run_id = finished_run(client, database)
    received = messages(client, f"{RUNS}/{run_id}/stream", headers={"Last-Event-ID": f"{LARGEST}:0"})
    assert [m.event for m in received] == ["status", "run_event", "end"]  # every point is behind that step


def test_a_last_event_id_naming_an_event_no_server_stores_is_422_before_the_stream_opens(client, database):
    run_id = finished_run(client, database)
    for last in ("1:9999999999", f"{LARGEST + 1}:0"):
        response = client.get(f"{RUNS}/{run_id}/stream", headers={"Last-Event-ID": last})
        assert response.status_code == 422, (last, response.text)
        assert response.json()["errors"][0]["field"] == "Last-Event-ID"
        assert "2147483647" in response.json()["errors"][0]["message"] or "9007199254740991" in response.json()["errors"][0]["message"]
