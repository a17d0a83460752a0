"""One modality's encoder made deeper (``model.depths``) through the API: stored, refused by field, left behind by a clone."""

from __future__ import annotations

from tests.server.api.test_api_runs import RUNS, fields


def test_a_run_submitted_with_a_deeper_encoder_stores_its_depth(client):
    response = client.post(RUNS, json={"config": {"dataset": "mfeat", "modalities": ["kar", "pix"], "model": {"depths": {"kar": 4}}}})
    assert response.status_code == 201, response.text
    assert response.json()["config"]["model"]["depths"] == {"kar": 4}


def test_a_depth_out_of_range_is_a_field_error_that_says_the_range(client):
    response = client.post(RUNS, json={"config": {"dataset": "mfeat", "model": {"depths": {"pix": 12}}}})
    assert response.status_code == 422
    assert "0 <= depth <= 8 for the mlp encoder" in fields(response)["config.model.depths.pix"]


def test_a_clone_onto_another_dataset_leaves_the_depths_behind(client):
    source = client.post(RUNS, json={"config": {"dataset": "mfeat", "model": {"depths": {"pix": 3}}, "epochs": 2}}).json()
    response = client.post(f"{RUNS}/{source['id']}/clone", json={"overrides": {"dataset": "synthetic"}})
    assert response.status_code == 201, response.text
    assert "depths" not in response.json()["config"]["model"] and response.json()["config"]["epochs"] == 2
