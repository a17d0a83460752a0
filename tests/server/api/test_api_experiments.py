"""/api/v1/experiments: named groups of runs."""

from __future__ import annotations

EXPERIMENTS = "/api/v1/experiments"


def test_an_experiment_is_created_and_listed_with_its_run_count(client, make_run):
    created = client.post(EXPERIMENTS, json={"name": "tau sweep", "description": "0.1 to 0.5"})
    assert created.status_code == 201
    make_run(experiment="tau sweep")
    make_run(experiment="tau sweep")
    listed = client.get(EXPERIMENTS).json()["items"]
    assert [(e["name"], e["description"], e["runs"]) for e in listed] == [("tau sweep", "0.1 to 0.5", 2)]


def test_experiment_names_are_unique(client):
    client.post(EXPERIMENTS, json={"name": "sweep"})
    response = client.post(EXPERIMENTS, json={"name": "sweep"})
    assert response.status_code == 409 and "already exists" in response.json()["detail"]


def test_an_experiment_can_be_renamed_unless_the_name_is_taken(client):
    first = client.post(EXPERIMENTS, json={"name": "a"}).json()
    client.post(EXPERIMENTS, json={"name": "b"})
    assert client.patch(f"{EXPERIMENTS}/{first['id']}", json={"name": "c"}).json()["name"] == "c"
    assert client.patch(f"{EXPERIMENTS}/{first['id']}", json={"name": "b"}).status_code == 409


def test_runs_can_be_listed_by_experiment_name_or_id(client, make_run):
    run = make_run(experiment="mine")
    make_run(experiment="other")
    by_name = client.get("/api/v1/runs", params={"experiment": "mine"}).json()["items"]
    by_id = client.get("/api/v1/runs", params={"experiment": str(run["experiment_id"])}).json()["items"]
    assert [r["id"] for r in by_name] == [r["id"] for r in by_id] == [run["id"]]


def test_an_empty_experiment_can_be_deleted(client):
    experiment = client.post(EXPERIMENTS, json={"name": "empty"}).json()
    assert client.delete(f"{EXPERIMENTS}/{experiment['id']}").status_code == 204
    assert client.get(f"{EXPERIMENTS}/{experiment['id']}").status_code == 404


def test_an_experiment_with_runs_is_kept(client, make_run):
    run = make_run(experiment="busy")
    response = client.delete(f"{EXPERIMENTS}/{run['experiment_id']}")
    assert response.status_code == 409 and "has 1 run" in response.json()["detail"]


def test_an_unknown_experiment_is_a_404_naming_it(client):
    assert client.get(f"{EXPERIMENTS}/777").json()["detail"] == "experiment 777 not found"
