"""/api/v1/results: the table of an experiment's runs (or of chosen runs), as every page and command shows it."""

from __future__ import annotations

from typing import Any

import pytest

RESULTS = "/api/v1/results"


def finished(client, method: str, seed: int, fused: float, strong: float, weak: float, *, gap: float | None = None,
             experiment: str = "study", fusion: str = "concat") -> dict[str, Any]:
    """A run logged from outside with this config, summary and final gap, succeeded."""
    config = {"dataset": "synthetic", "method": method, "fusion": fusion, "seed": seed, "epochs": 2}
    run = client.post("/api/v1/runs", json={"execute": False, "experiment": experiment, "config": config}).json()
    if gap is not None:
        points = [{"key": "util/delta", "step": 2, "value": gap}]
        assert client.post(f"/api/v1/runs/{run['id']}/metrics", json={"points": points}).status_code == 200
    summary = {"metric/val/strong": 0.9, "metric/val/weak": 0.4, "metric/test/fused": fused, "metric/test/strong": strong,
               "metric/test/weak": weak, "final/metric/test/fused": fused - 0.1, "final/metric/test/strong": strong,
               "final/metric/test/weak": weak}
    response = client.patch(f"/api/v1/runs/{run['id']}", json={"status": "succeeded", "summary": summary})
    assert response.status_code == 200, response.text
    return response.json()


def test_an_experiments_runs_make_one_row_per_method_and_fusion_with_mean_and_sd(client):
    first = finished(client, "joint", 0, 0.90, 0.9, 0.6, gap=0.1)
    second = finished(client, "joint", 1, 0.94, 0.8, 0.6, gap=0.3)
    finished(client, "miles", 0, 0.95, 0.9, 0.8)
    finished(client, "joint", 0, 0.5, 0.5, 0.5, experiment="another")
    answer = client.get(RESULTS, params={"experiment": "study"}).json()
    assert (answer["runs"], answer["counted"], answer["complete"]) == (3, 3, True)
    (group,) = answer["groups"]
    assert (group["dataset"], group["modalities"], group["dominant"], group["weak"], group["basis"]) == (
        "synthetic", ["strong", "weak"], "strong", "weak", "joint")
    joint, miles = group["rows"]
    assert (joint["method"], joint["fusion"], joint["seeds"], miles["method"]) == ("joint", "concat", 2, "miles")
    assert joint["best"]["fused"]["mean"] == pytest.approx(0.92) and joint["best"]["fused"]["sd"] == pytest.approx(0.04 / 2**0.5)
    assert joint["best"]["delta"]["mean"] == pytest.approx(0.25) and joint["last"]["fused"]["mean"] == pytest.approx(0.82)
    assert joint["gap"]["mean"] == pytest.approx(0.2)
    assert [run["id"] for run in joint["runs"]] == [first["id"], second["id"]]


def test_runs_not_finished_are_counted_by_status_beside_the_numbers(client):
    finished(client, "joint", 0, 0.9, 0.9, 0.6)
    client.post("/api/v1/runs", json={"experiment": "study", "config": {"dataset": "synthetic", "method": "joint", "seed": 1, "epochs": 2}})
    (row,) = client.get(RESULTS, params={"experiment": "study"}).json()["groups"][0]["rows"]
    assert (row["seeds"], row["waiting"]) == (1, {"queued": 1})


def test_the_table_of_chosen_runs_holds_those_runs_only(client):
    chosen = [finished(client, "joint", seed, 0.9, 0.9, 0.6)["id"] for seed in (0, 1)]
    finished(client, "joint", 2, 0.1, 0.1, 0.1)
    (row,) = client.get(RESULTS, params={"id": chosen}).json()["groups"][0]["rows"]
    assert sorted(run["id"] for run in row["runs"]) == sorted(chosen)


def test_an_experiment_without_runs_has_an_empty_table(client):
    assert client.get(RESULTS, params={"experiment": "nothing here"}).json() == {
        "groups": [], "runs": 0, "counted": 0, "complete": True}
