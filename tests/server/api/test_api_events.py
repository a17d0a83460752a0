"""/api/v1/runs/{id}/events: a run's log."""

from __future__ import annotations

import pytest


@pytest.fixture
def events_url(make_run) -> str:
    return f"/api/v1/runs/{make_run()['id']}/events"


def event(kind: str = "note", message: str = "hello", **extra):
    return {"kind": kind, "message": message, **extra}


def test_events_read_back_in_the_order_they_were_added(client, events_url):
    client.post(events_url, json={"events": [
        event("run.started", "training", step=0), event("miles.decision", "slowed pix", step=3, data={"slowed": "pix"}),
    ]})
    items = client.get(events_url).json()["items"]
    assert [(e["kind"], e["step"], e["message"], e["data"]) for e in items] == [
        ("run.started", 0, "training", {}), ("miles.decision", 3, "slowed pix", {"slowed": "pix"}),
    ]
    assert items[0]["id"] < items[1]["id"] and items[0]["time"]


def test_an_event_whose_key_the_run_has_is_skipped(client, events_url):
    first = client.post(events_url, json={"events": [event(key="epoch-3"), event(key="epoch-3")]}).json()
    again = client.post(events_url, json={"events": [event(key="epoch-3"), event(key="epoch-4")]}).json()
    assert len(first["created"]) == 1 and len(again["created"]) == 1
    assert [e["key"] for e in client.get(events_url).json()["items"]] == ["epoch-3", "epoch-4"]


def test_events_without_keys_are_all_kept(client, events_url):
    client.post(events_url, json={"events": [event(), event()]})
    assert len(client.get(events_url).json()["items"]) == 2


def test_after_id_pages_through_the_log(client, events_url):
    client.post(events_url, json={"events": [event(message=str(i)) for i in range(5)]})
    first = client.get(events_url, params={"limit": 2}).json()
    rest = client.get(events_url, params={"after_id": first["next_after_id"]}).json()
    assert [e["message"] for e in first["items"] + rest["items"]] == ["0", "1", "2", "3", "4"]
    assert rest["next_after_id"] is None


def test_kind_filters_exactly_or_by_prefix(client, events_url):
    client.post(events_url, json={"events": [event("miles.decision"), event("miles.stop"), event("run.started")]})
    assert [e["kind"] for e in client.get(events_url, params={"kind": "miles.*"}).json()["items"]] == [
        "miles.decision", "miles.stop"
    ]
    assert [e["kind"] for e in client.get(events_url, params={"kind": ["run.started", "miles.stop"]}).json()["items"]] == [
        "miles.stop", "run.started"
    ]


@pytest.mark.parametrize(("bad", "field"), [
    (event(kind="has space"), "events.0.kind"),
    (event(step=-1), "events.0.step"),
    (event(data={"x": [1, "nul\u0000"]}), "events.0.data"),
    ({"kind": "note"}, "events.0.message"),
])
def test_a_bad_event_is_named(client, events_url, bad, field):
    response = client.post(events_url, json={"events": [bad]})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == field
