"""/api/v1/grids: methods x fusions x seeds in one submission, validated whole, created all or nothing."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from server.app import create_app
from server.store import tokens
from tests.server.conftest import RecordingDispatcher
from trainer.methods import METHODS

GRIDS = "/api/v1/grids"
SMALL = {"dataset": "mfeat", "modalities": ["pix", "fou"], "epochs": 3}


def grid(**changes: Any) -> dict[str, Any]:
    body = {"config": SMALL, "methods": ["joint", "miles"], "fusions": ["concat", "sum"], "seeds": [0, 1]}
    return body | changes


def fields(response: Any) -> dict[str, str]:
    return {error["field"]: error["message"] for error in response.json()["errors"]}


def test_a_grid_becomes_one_queued_run_per_cell_in_its_experiment(client):
    response = client.post(GRIDS, json={"experiment": "mfeat grid", "name": "study", "tags": ["g"],
                                        "grid": grid(params={"miles": {"tau": 0.1}})})
    assert response.status_code == 201, response.text
    answer = response.json()
    experiment = answer["experiment"]
    assert response.headers["location"] == f"/api/v1/experiments/{experiment['id']}"
    assert (experiment["name"], experiment["runs"]) == ("mfeat grid", 8)
    assert [cell["key"] for cell in answer["cells"]] == [
        f"{m}/{f}/seed{s}" for m in ("joint", "miles") for f in ("concat", "sum") for s in (0, 1)
    ]
    runs = [cell["run"] for cell in answer["cells"]]
    assert {run["status"] for run in runs} == {"queued"} and {tuple(run["tags"]) for run in runs} == {("g",)}
    assert runs[-1]["name"] == "study: miles · sum · seed 1"
    assert (runs[-1]["method"], runs[-1]["fusion"], runs[-1]["seed"]) == ("miles", "sum", 1)
    assert runs[-1]["config"]["params"]["tau"] == 0.1 and runs[0]["config"]["params"] == {}
    listed = client.get("/api/v1/runs", params={"experiment": "mfeat grid", "limit": 50}).json()["items"]
    assert sorted(run["id"] for run in listed) == sorted(run["id"] for run in runs)


def test_the_runs_are_handed_to_the_dispatcher_once_all_are_committed(database, settings):
    dispatcher = RecordingDispatcher(database)
    with TestClient(create_app(settings, dispatcher=dispatcher), base_url="http://localhost") as client:
        runs = [cell["run"] for cell in client.post(GRIDS, json={"experiment": "e", "grid": grid()}).json()["cells"]]
    assert dispatcher.enqueued == [(run["id"], "cpu", "queued") for run in runs]


def test_every_bad_field_is_named_and_nothing_is_stored(client):
    response = client.post(GRIDS, json={"experiment": "bad", "grid": grid(
        methods=["joint", "nope"], fusions=["concat", "mean"], seeds=[0, 0], config=SMALL | {"lr": 5},
        params={"miles": {"tau": 2}},
    )})
    assert response.status_code == 422
    assert fields(response) == {
        "grid.methods.1": f"unknown method 'nope'; allowed: {', '.join(METHODS)}",
        "grid.fusions.1": "unknown fusion 'mean'; allowed: concat, sum, film, gated",
        "grid.seeds": "0 appears more than once; name each seed once",
        "grid.params.miles": "method 'miles' is not among the grid's methods (joint, nope)",
        "grid.config.lr": "must satisfy 0 < lr <= 1 (got 5)",
    }
    assert client.get("/api/v1/runs").json()["items"] == []
    assert client.get("/api/v1/experiments").json()["items"] == []


def test_the_servers_epoch_limit_is_named_once_for_the_whole_grid(make_client, make_settings):
    client = make_client(make_settings(max_epochs=2))
    response = client.post(GRIDS, json={"experiment": "long", "grid": grid()})
    assert response.status_code == 422
    assert fields(response) == {"grid.config.epochs": "must be at most 2 on this server (MILES_MAX_EPOCHS); got 3"}


def test_a_grid_needs_an_experiment_to_group_its_runs(client):
    response = client.post(GRIDS, json={"grid": grid()})
    assert response.status_code == 422 and fields(response) == {"experiment": "is required"}


def test_a_grid_that_would_pass_the_active_limit_is_refused_whole(make_client, make_settings, small_config):
    client = make_client(make_settings(max_active_runs=9))
    assert client.post("/api/v1/runs", json={"config": small_config}).status_code == 201
    assert client.post(GRIDS, json={"experiment": "fits", "grid": grid()}).status_code == 201  # 1 + 8 runs: at the limit
    response = client.post(GRIDS, json={"experiment": "one too many", "grid": grid(seeds=[0])})
    assert response.status_code == 429
    assert "these 4 runs would pass" in response.json()["detail"] and "MILES_MAX_ACTIVE_RUNS=9" in response.json()["detail"]
    assert "has 9" in response.json()["detail"]
    assert [e["name"] for e in client.get("/api/v1/experiments").json()["items"]] == ["fits"]
    assert len(client.get("/api/v1/runs", params={"limit": 100}).json()["items"]) == 9


def test_with_auth_on_a_grid_needs_a_token_and_counts_against_it(make_client, make_settings, database):
    client = make_client(make_settings(auth="on", max_active_runs=4))
    with database.transaction() as session:
        secret = tokens.create(session=session, name="grid user")[1]
    assert client.post(GRIDS, json={"experiment": "e", "grid": grid(seeds=[0])}).status_code == 401
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.post(GRIDS, json={"experiment": "e", "grid": grid(seeds=[0])}, headers=headers).status_code == 201
    assert client.post(GRIDS, json={"experiment": "e", "grid": grid(seeds=[1], methods=["joint"])},
                       headers=headers).status_code == 429


def test_text_that_cannot_be_stored_is_refused_with_its_field(client):
    config = {"dataset": "folder", "data_path": "mine", "modalities": ["a\u0000", "b"]}
    response = client.post(GRIDS, json={"experiment": "e", "grid": grid(config=config)})
    assert response.status_code == 422 and "grid.config" in fields(response)


def test_long_run_names_are_shortened_to_fit(client):
    response = client.post(GRIDS, json={"experiment": "e", "name": "n" * 200, "grid": grid(seeds=[0], methods=["joint"])})
    assert response.status_code == 201
    names = [cell["run"]["name"] for cell in response.json()["cells"]]
    assert all(len(name) == 200 and name.endswith("\u2026") for name in names)
