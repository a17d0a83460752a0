"""A MILES decision whose utilization is undefined (NaN) reaches the events API as valid JSON, by either path."""

from __future__ import annotations

import json

import httpx
from fastapi.testclient import TestClient

from tests.worker.conftest import claimed_run, reporter_for
from trainer.client import MilesClient
from trainer.miles import conditional_utilization, miles_decision


def undefined_decision():
    return miles_decision(conditional_utilization(0.0, {"audio": 0.3, "image": 0.1}), tau=0.2, mu=0.5)


def strict(response: httpx.Response):
    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(response.text, parse_constant=refuse)


def test_the_worker_stores_it_with_nulls(client, database):
    run_id = claimed_run(database)
    decision = undefined_decision()
    reporter_for(database, run_id).on_event(1, "miles.decision", decision.message(1e-3), decision.to_dict())
    [event] = strict(client.get(f"/api/v1/runs/{run_id}/events"))["items"]
    assert event["data"]["delta"] is None and event["data"]["utilization"] == {"audio": None, "image": None}
    assert event["data"]["branch"] == "undefined"


def test_a_notebook_sends_it_with_nulls(client):
    miles = MilesClient("http://localhost")  # the name the test client speaks to (a loopback one: auth is off)
    # A second test client of the same app (whichever httpx the installed Starlette speaks), rooted at the API.
    miles._http = TestClient(client.app, base_url="http://localhost/api/v1")
    decision = undefined_decision()
    with miles.track("my loop") as tracked:
        tracked.event("miles.decision", decision.message(1e-3), step=1, data=decision.to_dict())
        run_id = tracked.id
    [event] = strict(client.get(f"/api/v1/runs/{run_id}/events"))["items"]
    assert event["data"]["delta"] is None and event["data"]["utilization"] == {"audio": None, "image": None}
