"""/api/v1/sweeps: starting a sweep (every bad field named), reading it, its trials and importance, cancelling it.

The app here does not drive its sweeps (each test moves the driver itself, a round at a time),
so that what a response holds does not depend on a background thread's timing.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest

from server.settings import Settings
from server.store import runs as run_store
from server.store import tokens
from server.sweeps.driver import SweepDriver
from trainer.methods import METHODS

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SWEEPS = "/api/v1/sweeps"
BASE = {
    "dataset": "synthetic", "dataset_params": {"dim": 8, "classes": 3, "train_size": 96, "val_size": 32, "test_size": 32},
    "epochs": 2, "device": "cpu",
}
LR = {"lr": {"low": 1e-4, "high": 1e-2, "log": True}}


@pytest.fixture
def app_for(make_client: Callable[..., TestClient]) -> Callable[[Settings], TestClient]:
    return lambda settings: make_client(settings, drive_sweeps=False)


@pytest.fixture
def api(app_for: Callable[[Settings], TestClient], settings: Settings) -> TestClient:
    return app_for(settings)


def driver_of(client: TestClient) -> SweepDriver:
    state = client.app.state
    return SweepDriver(state.settings, state.database, state.dispatcher, state.studies)


def start(api: TestClient, **fields: Any) -> dict[str, Any]:
    response = api.post(SWEEPS, json={"config": BASE, "methods": ["miles"], "space": LR, "seeds_for_best": 0} | fields)
    assert response.status_code == 201, response.text
    return response.json()


def fields(response: Any) -> dict[str, str]:
    return {error["field"]: error["message"] for error in response.json()["errors"]}


def test_a_started_sweep_is_searching_with_its_plan_and_an_experiment_of_its_name(api):
    response = api.post(SWEEPS, json={"config": BASE, "methods": ["miles", "joint"], "space": LR | {
        "params.tau": {"low": 0.0, "high": 0.5}}, "budget": 4, "name": "lr and tau"})

    assert response.status_code == 201
    sweep = response.json()
    assert response.headers["location"] == f"{SWEEPS}/{sweep['id']}"
    assert (sweep["status"], sweep["name"], sweep["experiment"]) == ("searching", "lr and tau", "lr and tau")
    assert sweep["plan"]["budgets"] == {"miles": 4, "joint": 4}
    assert set(sweep["plan"]["spaces"]["joint"]) == {"lr"}
    assert sweep["progress"]["miles"] == {"budget": 4, "trials": 0, "running": 0, "complete": 0, "pruned": 0,
                                          "failed": 0, "reruns": 0, "reruns_done": 0}
    assert api.get(f"{SWEEPS}/{sweep['id']}").json() == sweep


def test_every_bad_field_of_a_sweep_is_named_at_once(api):
    response = api.post(SWEEPS, json={"config": BASE | {"epochs": 0}, "methods": ["miles"], "space": LR})
    assert response.status_code == 422
    assert fields(response) == {"config.epochs": "must satisfy 1 <= epochs <= 1000 (got 0)"}

    response = api.post(SWEEPS, json={"config": BASE, "methods": ["miles"], "parallelism": 500, "space": {
        "lr": {"low": 0, "high": 0.1}, "model.nothing": {"choices": [1]}, "params.tau": {"low": 0.0, "high": 3.0}}})
    assert response.status_code == 422
    found = fields(response)
    assert found["space.lr.low"] == "must satisfy 0 < lr <= 1 (got 0.0)"
    assert found["space.model.nothing"].startswith("is not a field a sweep can search")
    assert found["space.params.tau.high"] == "must satisfy 0 <= tau <= 1 (got 3.0)"
    assert "MILES_MAX_ACTIVE_RUNS" in found["parallelism"]


def test_a_malformed_dimension_is_named_with_what_a_dimension_is(api):
    response = api.post(SWEEPS, json={"config": BASE, "methods": ["miles"], "space": {
        "params.tau": {"low": 0.4, "high": 0.2}, "lr": {"low": 1e-3}, "batch_size": {"choices": [16, 16]}}})
    assert response.status_code == 422
    assert fields(response) == {
        "space.params.tau": "needs finite bounds with low < high (got low 0.4, high 0.2)",
        "space.lr": "give low and high (a range) or choices (a list)",
        "space.batch_size": "choices must be distinct",
    }


def test_unknown_fields_and_methods_are_refused_with_what_is_allowed(api):
    response = api.post(SWEEPS, json={"config": BASE, "methods": ["miles", "magic"], "space": LR, "trials": 5})
    assert response.status_code == 422
    found = fields(response)
    assert found["methods"] == f"unknown method 'magic'; allowed: {', '.join(METHODS)}"
    assert "trials" in found


def test_a_test_metric_cannot_be_the_objective(api):
    response = api.post(SWEEPS, json={"config": BASE, "methods": ["miles"], "space": LR,
                                      "objective": {"kind": "test"}})
    assert response.status_code == 422
    assert "objective.kind" in fields(response)


def test_a_sweeps_trials_are_ordinary_runs_listed_with_their_sweep(api):
    sweep = start(api, budget=2, parallelism=2)
    driver_of(api).tick()

    trials = api.get(f"{SWEEPS}/{sweep['id']}/trials").json()["items"]
    assert [(t["method"], t["role"], t["number"], t["state"], t["run_status"]) for t in trials] == [
        ("miles", "trial", 0, "running", "queued"), ("miles", "trial", 1, "running", "queued"),
    ]
    listed = api.get("/api/v1/runs", params={"sweep": sweep["id"]}).json()["items"]
    assert sorted(run["id"] for run in listed) == sorted(t["run_id"] for t in trials)
    assert all(run["sweep_id"] == sweep["id"] and run["config"]["evaluate_test"] is False for run in listed)
    assert api.get(f"{SWEEPS}/{sweep['id']}").json()["progress"]["miles"]["running"] == 2


def test_importance_is_empty_until_two_trials_have_finished(api, database):
    sweep = start(api, budget=3, parallelism=3, space=LR | {"batch_size": {"choices": [16, 32]}})
    driver = driver_of(api)
    driver.tick()
    assert api.get(f"{SWEEPS}/{sweep['id']}/importance").json() == {"importance": {"miles": {}}}
    for value, trial in zip([0.4, 0.9, 0.5], api.get(f"{SWEEPS}/{sweep['id']}/trials").json()["items"], strict=True):
        with database.transaction() as session:
            run_store.claim(session=session, run_id=trial["run_id"], worker="w")
            run_store.finish(session=session, run_id=trial["run_id"], status="succeeded", summary={"metric/val/fused": value})
    driver.tick()

    importance = api.get(f"{SWEEPS}/{sweep['id']}/importance").json()["importance"]["miles"]
    assert set(importance) == {"lr", "batch_size"} and sum(importance.values()) == pytest.approx(1.0)


def test_cancelling_a_sweep_cancels_its_queued_trials_and_a_second_cancel_conflicts(api):
    sweep = start(api, budget=5, parallelism=2)
    driver_of(api).tick()

    response = api.post(f"{SWEEPS}/{sweep['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    runs = api.get("/api/v1/runs", params={"sweep": sweep["id"]}).json()["items"]
    assert [run["status"] for run in runs] == ["cancelled", "cancelled"]
    again = api.post(f"{SWEEPS}/{sweep['id']}/cancel")
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]


def test_sweeps_are_listed_newest_first_and_filtered_by_status(api):
    first, second = start(api), start(api)
    api.post(f"{SWEEPS}/{first['id']}/cancel")

    assert [s["id"] for s in api.get(SWEEPS).json()["items"]] == [second["id"], first["id"]]
    assert [s["id"] for s in api.get(SWEEPS, params={"status": "cancelled"}).json()["items"]] == [first["id"]]
    bad = api.get(SWEEPS, params={"status": "paused"})
    assert bad.status_code == 422
    assert fields(bad) == {"status.0": "Input should be 'searching', 'confirming', 'succeeded', 'failed' or 'cancelled'"}


def test_a_missing_sweep_is_a_404(api):
    for path in ("", "/trials", "/importance"):
        response = api.get(f"{SWEEPS}/999999{path}")
        assert response.status_code == 404 and response.json()["detail"] == "sweep 999999 not found"
    assert api.post(f"{SWEEPS}/999999/cancel").status_code == 404


def test_starting_and_cancelling_a_sweep_need_a_token_when_auth_is_on(app_for, make_settings, database):
    client = app_for(make_settings(auth="on"))
    body = {"config": BASE, "methods": ["miles"], "space": LR}
    assert client.post(SWEEPS, json=body).status_code == 401
    with database.transaction() as session:
        token, secret = tokens.create(session=session, name="sweeper")
    created = client.post(SWEEPS, json=body, headers={"Authorization": f"Bearer {secret}"})
    assert created.status_code == 201
    assert client.post(f"{SWEEPS}/{created.json()['id']}/cancel").status_code == 401
    assert client.get(SWEEPS).status_code == 401
