"""The paper's tasks through the API: presets in the catalogue and in a submitted config, and weights' paths."""

from __future__ import annotations

import pytest

from tests.server.api.test_api_runs import RUNS, fields


def test_the_catalog_lists_each_tasks_preset_with_its_fields(client):
    catalog = client.get("/api/v1/catalog").json()
    presets = {p["name"]: p for p in catalog["presets"]}
    assert list(presets) == ["cremad", "smnist", "luma", "mmimdb"]
    assert presets["cremad"]["config"]["model"]["encoders"] == {"audio": "resnet18", "visual": "resnet18"}
    assert presets["mmimdb"]["metric"] == "F1 (macro)" and presets["cremad"]["metric"] == "accuracy"
    datasets = {d["name"]: d for d in catalog["datasets"]}
    assert datasets["mmimdb"]["task"] == "multilabel" and datasets["mmimdb"]["modalities"]["text"]["kind"] == "text"


def test_a_run_submitted_with_a_preset_stores_the_papers_fields_under_those_given(client):
    response = client.post(RUNS, json={"config": {"preset": "cremad", "data_path": "cremad", "epochs": 5}})
    assert response.status_code == 201, response.text
    config = response.json()["config"]
    assert (config["preset"], config["dataset"], config["epochs"], config["batch_size"]) == ("cremad", "cremad", 5, 64)
    assert config["model"]["encoders"] == {"audio": "resnet18", "visual": "resnet18"}


def test_an_unknown_preset_is_a_field_error(client):
    response = client.post(RUNS, json={"config": {"preset": "imagenet", "epochs": 1}})
    assert response.status_code == 422
    assert "unknown preset 'imagenet'" in fields(response)["config.preset"]


@pytest.mark.parametrize("source", ["/etc/passwd", "../weights.pth"])
def test_pretrained_weights_may_not_lead_outside_the_data_directory(client, source):
    config = {"preset": "cremad", "data_path": "cremad", "model": {"pretrained": {"audio": source}}}
    response = client.post(RUNS, json={"config": config})
    assert response.status_code == 422
    assert "outside the server's data directory" in fields(response)["config.model.pretrained.audio"]


def test_imagenet_and_bert_names_are_accepted_as_pretrained_weights(client):
    response = client.post(RUNS, json={"config": {"preset": "mmimdb", "data_path": "mmimdb"}})
    assert response.status_code == 201, response.text
    assert response.json()["config"]["model"]["pretrained"] == {"text": "bert-base-uncased", "image": "imagenet"}


def test_a_clone_of_a_preset_run_onto_another_dataset_leaves_the_preset_and_its_encoders_behind(client):
    source = client.post(RUNS, json={"config": {"preset": "cremad", "data_path": "cremad", "epochs": 5}}).json()
    response = client.post(f"{RUNS}/{source['id']}/clone", json={"overrides": {"dataset": "synthetic"}})
    assert response.status_code == 201, response.text
    config = response.json()["config"]
    assert config["preset"] is None and config["dataset"] == "synthetic"
    assert config["model"]["encoders"] == {} and config["model"]["embed_dim"] == 512 and config["epochs"] == 5
