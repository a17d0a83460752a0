"""The API takes the baselines MSES, MSLR and unimodal like any method, and names what is wrong with them."""

from __future__ import annotations

from typing import Any

import pytest

RUNS = "/api/v1/runs"


def fields(response: Any) -> dict[str, str]:
    return {error["field"]: error["message"] for error in response.json()["errors"]}


def test_the_catalog_describes_the_baselines_and_marks_unimodal_as_one_modality_alone(client):
    methods = {m["name"]: m for m in client.get("/api/v1/catalog").json()["methods"]}
    assert methods["mses"]["params"]["properties"]["patience"]["default"] == 5
    assert methods["mslr_dynamic"]["params"]["properties"]["window"]["default"] == 5
    assert "lrs" in methods["mslr_keep"]["params"]["properties"] and "tune-lr" in methods["mslr_keep"]["params"]["properties"]["lrs"]["description"]
    assert methods["unimodal"]["single_modality"] is True and methods["mses"]["single_modality"] is False


@pytest.mark.parametrize(
    ("config", "params"),
    [
        ({"method": "mses"}, {"patience": 5}),
        ({"method": "mslr_keep", "params": {"lrs": {"pix": 1e-3, "fou": 3e-4}}}, {"lrs": {"pix": 1e-3, "fou": 3e-4}}),
        ({"method": "mslr_smooth", "params": {"lrs": {"pix": 1e-3, "fou": 3e-4}}}, {"lrs": {"pix": 1e-3, "fou": 3e-4}}),
        ({"method": "mslr_dynamic", "params": {"lrs": {"pix": 1e-3, "fou": 3e-4}, "window": 3}}, {"lrs": {"pix": 1e-3, "fou": 3e-4}, "window": 3}),
        ({"method": "unimodal", "modalities": ["fou"]}, {}),
    ],
)
def test_each_baseline_is_queued_with_its_hyperparameters(client, config, params):
    response = client.post(RUNS, json={"config": {"dataset": "mfeat", "epochs": 2} | config})
    assert response.status_code == 201, response.json()
    assert response.json()["config"]["params"] == params


@pytest.mark.parametrize(
    ("config", "field", "fragment"),
    [
        ({"method": "mses", "params": {"patience": 0}}, "config.params.patience", "1 <= patience <= 1000"),
        ({"method": "mslr_keep", "params": {"lrs": {"pix": 1e-3}}}, "config.params.lrs", "must name exactly the run's modalities (pix, fou)"),
        ({"method": "mslr_smooth", "params": {"lrs": {"pix": 1e-3, "fou": 5}}}, "config.params.lrs", "the rate of 'fou' must satisfy 0 < lr <= 1"),
        ({"method": "mslr_dynamic", "params": {"lrs": {"pix": 1e-3, "fou": 1e-3}, "window": 0}}, "config.params.window", "1 <= window <= 100"),
        ({"method": "unimodal"}, "config.modalities", "trains one modality alone: name exactly one"),
        ({"method": "miles", "params": {"utilization_split": "test"}}, "config.params.utilization_split", "'train_running'"),
    ],
)
def test_bad_baseline_hyperparameters_are_a_422_naming_the_field(client, config, field, fragment):
    response = client.post(RUNS, json={"config": {"dataset": "mfeat"} | config})
    assert response.status_code == 422
    assert fragment in fields(response)[field]


def test_mslr_without_rates_says_how_to_record_them(client, tmp_path, monkeypatch):
    monkeypatch.setenv("MILES_HOME", str(tmp_path))
    response = client.post(RUNS, json={"config": {"dataset": "mfeat", "method": "mslr_keep"}})
    assert response.status_code == 422
    assert "miles tune-lr --dataset mfeat --modality pix" in fields(response)["config.params.lrs"]
