"""/api/v1/runs/{id}/metrics: batched ingest, downsampled series, latest values and exports."""

from __future__ import annotations

import csv
import io

import pytest


@pytest.fixture
def run_id(make_run) -> int:
    return make_run()["id"]


@pytest.fixture
def metrics_url(run_id: int) -> str:
    return f"/api/v1/runs/{run_id}/metrics"


def post_points(client, url, points):
    return client.post(url, json={"points": points})


def test_points_written_in_a_batch_read_back_by_key(client, metrics_url):
    response = post_points(client, metrics_url, [
        {"key": "loss/train", "step": step, "value": 1 / step} for step in (1, 2, 3)
    ] + [{"key": "util/delta", "step": 1, "value": 0.4}])
    assert response.json() == {"accepted": 4, "cancel_requested": False}
    series = client.get(metrics_url).json()["series"]
    assert series == {
        "loss/train": {"steps": [1, 2, 3], "values": [1.0, 0.5, 1 / 3]},
        "util/delta": {"steps": [1], "values": [0.4]},
    }


def test_a_repeated_point_overwrites_instead_of_duplicating(client, metrics_url):
    post_points(client, metrics_url, [{"key": "loss", "step": 1, "value": 1.0}])
    post_points(client, metrics_url, [{"key": "loss", "step": 1, "value": 2.0}, {"key": "loss", "step": 1, "value": 3.0}])
    assert client.get(metrics_url).json()["series"]["loss"] == {"steps": [1], "values": [3.0]}


def test_keys_select_series_exactly_or_by_prefix(client, metrics_url):
    post_points(client, metrics_url, [
        {"key": key, "step": 1, "value": 0.5} for key in ("util/pix", "util/fou", "util/delta", "loss/train")
    ])
    series = client.get(metrics_url, params={"keys": "util/*,loss/train"}).json()["series"]
    assert sorted(series) == ["loss/train", "util/delta", "util/fou", "util/pix"]
    assert list(client.get(metrics_url, params={"keys": "util/pix"}).json()["series"]) == ["util/pix"]


def test_a_key_not_logged_yet_is_an_empty_series(client, metrics_url):
    assert client.get(metrics_url, params={"keys": "metric/test/fused"}).json()["series"] == {
        "metric/test/fused": {"steps": [], "values": []}
    }


def test_since_step_returns_only_newer_points(client, metrics_url):
    post_points(client, metrics_url, [{"key": "loss", "step": step, "value": step} for step in range(1, 6)])
    assert client.get(metrics_url, params={"since_step": 3}).json()["series"]["loss"]["steps"] == [4, 5]


def test_a_long_series_is_downsampled_keeping_its_spikes(client, metrics_url):
    points = [{"key": "loss", "step": step, "value": 1.0} for step in range(5000)]
    points[1234]["value"], points[4321]["value"] = 100.0, -100.0
    post_points(client, metrics_url, points)
    series = client.get(metrics_url, params={"max_points": 100}).json()["series"]["loss"]
    assert len(series["steps"]) <= 100
    points = set(zip(series["steps"], series["values"], strict=True))
    assert {(1234, 100.0), (4321, -100.0)} <= points


def test_the_latest_values_follow_the_highest_step(client, metrics_url):
    post_points(client, metrics_url, [{"key": "loss", "step": 5, "value": 0.5}])
    post_points(client, metrics_url, [{"key": "loss", "step": 2, "value": 0.9}])  # late, earlier step
    assert client.get(f"{metrics_url}/latest").json() == {"latest": {"loss": {"step": 5, "value": 0.5}}}


def test_the_answer_tells_a_logged_run_that_it_was_asked_to_stop(client):
    run = client.post("/api/v1/runs", json={"execute": False}).json()
    client.post(f"/api/v1/runs/{run['id']}/cancel")
    response = post_points(client, f"/api/v1/runs/{run['id']}/metrics", [{"key": "loss", "step": 1, "value": 1}])
    assert response.json()["cancel_requested"] is True


def test_a_logged_runs_progress_follows_its_steps_up_to_its_epochs(client, make_run):
    run = make_run(execute=False, config={"epochs": 5})
    url = f"/api/v1/runs/{run['id']}"
    assert run["progress"] == {"epoch": 0, "epochs": 5}
    post_points(client, f"{url}/metrics", [{"key": "loss", "step": step, "value": 1} for step in (1, 2, 3)])
    assert client.get(url).json()["progress"] == {"epoch": 3, "epochs": 5}
    post_points(client, f"{url}/metrics", [{"key": "metric/test/fused", "step": 2, "value": 1}])  # late, earlier
    assert client.get(url).json()["progress"] == {"epoch": 3, "epochs": 5}
    post_points(client, f"{url}/metrics", [{"key": "loss", "step": 9, "value": 1}])
    assert client.get(url).json()["progress"] == {"epoch": 5, "epochs": 5}


def test_an_executed_runs_progress_is_the_workers_not_its_points(client, make_run):
    run = make_run()
    post_points(client, f"/api/v1/runs/{run['id']}/metrics", [{"key": "loss", "step": 2, "value": 1}])
    assert client.get(f"/api/v1/runs/{run['id']}").json()["progress"]["epoch"] == 0


def test_50000_points_are_accepted_in_one_request_and_50001_are_not(client, metrics_url):
    batch = [{"key": "loss", "step": step, "value": 0.0} for step in range(50_000)]
    assert post_points(client, metrics_url, batch).json()["accepted"] == 50_000
    response = post_points(client, metrics_url, batch + [{"key": "loss", "step": 50_000, "value": 0.0}])
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "points"


@pytest.mark.parametrize(("point", "field"), [
    ({"key": "loss", "step": 1, "value": "high"}, "points.1.value"),
    ({"key": "loss", "step": -1, "value": 1}, "points.1.step"),
    ({"key": "loss", "step": 2**53, "value": 1}, "points.1.step"),
    ({"key": "loss", "step": 1.5, "value": 1}, "points.1.step"),
    ({"key": "util/*", "step": 1, "value": 1}, "points.1.key"),
    ({"key": "", "step": 1, "value": 1}, "points.1.key"),
    ({"key": "loss", "step": 1, "value": 1, "time": "yesterday"}, "points.1.time"),
    ({"key": "loss", "step": 1, "value": 1, "colour": "red"}, "points.1.colour"),
    ({"step": 1, "value": 1}, "points.1.key"),
])
def test_a_bad_point_is_named_by_its_index(client, metrics_url, point, field):
    response = post_points(client, metrics_url, [{"key": "ok", "step": 1, "value": 1}, point])
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert client.get(metrics_url).json()["series"] == {}  # nothing of the batch was written


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_values_are_refused(client, metrics_url, token):
    body = '{"points": [{"key": "loss", "step": 1, "value": TOKEN}]}'.replace("TOKEN", token)
    response = client.post(metrics_url, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "points.0.value", "message": "Input should be a finite number"}]


@pytest.mark.parametrize("keys", ["a*b", ",".join(f"k{i}" for i in range(201))])
def test_a_malformed_or_oversize_keys_filter_is_refused(client, metrics_url, keys):
    response = client.get(metrics_url, params={"keys": keys})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "keys"


def test_the_csv_export_holds_every_point(client, metrics_url, run_id):
    post_points(client, metrics_url, [{"key": "loss", "step": step, "value": step / 10, "time": "2024-05-01T12:00:00Z"}
                                      for step in range(1, 4)])
    response = client.get(f"/api/v1/runs/{run_id}/metrics.csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert f"run-{run_id}-metrics.csv" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["key"], int(r["step"]), float(r["value"])) for r in rows] == [("loss", 1, 0.1), ("loss", 2, 0.2), ("loss", 3, 0.3)]
    assert rows[0]["time"] == "2024-05-01T12:00:00+00:00"


def test_the_json_export_is_an_array_of_points(client, metrics_url, run_id):
    post_points(client, metrics_url, [{"key": "a", "step": 1, "value": 1.5}, {"key": "b", "step": 2, "value": 2.5}])
    points = client.get(f"/api/v1/runs/{run_id}/metrics.json", params={"keys": "b"}).json()
    assert [(p["key"], p["step"], p["value"]) for p in points] == [("b", 2, 2.5)]
    assert client.get(f"/api/v1/runs/{run_id}/metrics.json", params={"keys": "none"}).json() == []


def test_metrics_of_an_unknown_run_are_a_404(client):
    response = post_points(client, "/api/v1/runs/999999/metrics", [{"key": "a", "step": 1, "value": 1}])
    assert response.status_code == 404 and response.json()["detail"] == "run 999999 not found"
