"""The API takes `adaptive` like any method: its defaults filled in, a bad value a 422 naming the field."""

from __future__ import annotations

import pytest

RUNS = "/api/v1/runs"
DEFAULTS = {"tau": 0.05, "kappa": 2.0, "mu": 0.5, "beta": 0.5, "patience": 3}


def test_adaptive_is_queued_with_its_defaults_and_the_values_given(client):
    response = client.post(RUNS, json={"config": {"dataset": "mfeat", "epochs": 2, "method": "adaptive", "params": {"kappa": 4}}})
    assert response.status_code == 201, response.json()
    assert response.json()["config"]["params"] == DEFAULTS | {"kappa": 4.0}


@pytest.mark.parametrize(
    ("params", "field", "fragment"),
    [({"beta": 1}, "config.params.beta", "0 <= beta < 1"), ({"kappa": 0}, "config.params.kappa", "0 < kappa <= 100"),
     ({"speed": 1}, "config.params.speed", "")],
)
def test_bad_adaptive_parameters_are_a_422_naming_the_field(client, params, field, fragment):
    response = client.post(RUNS, json={"config": {"dataset": "mfeat", "method": "adaptive", "params": params}})
    assert response.status_code == 422
    messages = {error["field"]: error["message"] for error in response.json()["errors"]}
    assert fragment in messages[field]
