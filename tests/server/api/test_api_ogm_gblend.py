"""The API validates OGM, OGM-GE and G-Blend specs before anything is queued: ranges, modes, and
the fusions OGM can split into per-modality shares."""

from __future__ import annotations

import pytest

RUNS = "/api/v1/runs"


def fields(response) -> dict[str, str]:
    return {error["field"]: error["message"] for error in response.json()["errors"]}


@pytest.mark.parametrize("method", ["ogm", "ogm_ge"])
@pytest.mark.parametrize("fusion", ["film", "gated"])
def test_ogm_with_a_fusion_without_per_modality_shares_is_refused(client, method, fusion):
    response = client.post(RUNS, json={"config": {"dataset": "mfeat", "method": method, "fusion": fusion}})
    assert response.status_code == 422
    assert fields(response) == {
        "config.fusion": f"method {method!r} needs each modality's share of the fused logits, which {fusion!r} "
        "fusion does not define; allowed: concat, sum",
    }


@pytest.mark.parametrize(
    ("method", "params", "field", "fragment"),
    [
        ("ogm", {"alpha": 0}, "config.params.alpha", "0 < alpha <= 10"),
        ("ogm_ge", {"start_epoch": 0}, "config.params.start_epoch", "1 <= start_epoch <= 1000"),
        ("ogm", {"start_epoch": 20, "end_epoch": 10}, "config.params.end_epoch", "at least start_epoch (20)"),
        ("gblend", {"mode": "sometimes"}, "config.params.mode", "'offline' or 'online'"),
        ("gblend", {"holdout": 1}, "config.params.holdout", "0 < holdout < 1"),
        ("gblend", {"super_epoch": 0}, "config.params.super_epoch", "1 <= super_epoch <= 100"),
    ],
)
def test_bad_hyperparameters_are_named_with_what_is_allowed(client, method, params, field, fragment):
    response = client.post(RUNS, json={"config": {"dataset": "mfeat", "method": method, "params": params}})
    assert response.status_code == 422
    assert fragment in fields(response)[field]


@pytest.mark.parametrize(
    ("method", "fusion", "params"),
    [("ogm", "sum", {"alpha": 0.8, "start_epoch": 1, "end_epoch": 50}),
     ("ogm_ge", "concat", {"alpha": 0.8, "start_epoch": 1, "end_epoch": 50}),
     ("gblend", "film", {"mode": "offline", "super_epoch": 5, "holdout": 0.1})],
)
def test_a_valid_spec_is_queued_with_the_papers_defaults(client, method, fusion, params):
    response = client.post(RUNS, json={"config": {"dataset": "mfeat", "method": method, "fusion": fusion}})
    assert response.status_code == 201
    assert response.json()["config"]["params"] == params


def test_the_catalogue_lists_the_methods_and_their_parameters(client):
    methods = {m["name"]: m for m in client.get("/api/v1/catalog").json()["methods"]}
    assert methods["ogm"]["fusions"] == methods["ogm_ge"]["fusions"] == ["concat", "sum"]
    assert methods["gblend"]["fusions"] is None and methods["miles"]["fusions"] is None
    assert set(methods["ogm"]["params"]["properties"]) == {"alpha", "start_epoch", "end_epoch"}
    assert set(methods["gblend"]["params"]["properties"]) == {"mode", "super_epoch", "holdout"}
