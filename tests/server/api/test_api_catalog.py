"""/api/v1/catalog: what a run can be made of, for the form and for clients."""

from __future__ import annotations


def test_datasets_list_their_modalities_with_kinds_and_shapes(client):
    datasets = {d["name"]: d for d in client.get("/api/v1/catalog").json()["datasets"]}
    mfeat = datasets["mfeat"]
    assert mfeat["modalities"]["pix"] == {"kind": "vector", "shape": [240]}
    assert mfeat["default_modalities"] == ["pix", "fou"] and len(mfeat["classes"]) == 10
    assert datasets["folder"]["reads_disk"] is True and datasets["mfeat"]["reads_disk"] is False


def test_methods_describe_their_hyperparameters_with_defaults_and_help(client):
    methods = {m["name"]: m for m in client.get("/api/v1/catalog").json()["methods"]}
    tau = methods["miles"]["params"]["properties"]["tau"]
    assert tau["default"] == 0.2 and (tau["minimum"], tau["maximum"]) == (0, 1)
    assert "threshold" in tau["description"]
    assert methods["joint"]["params"].get("properties", {}) == {}


def test_the_catalog_lists_fusions_the_config_schema_and_this_servers_limits(make_client, make_settings):
    catalog = make_client(make_settings(max_epochs=50)).get("/api/v1/catalog").json()
    assert {f["name"] for f in catalog["fusions"]} == {"concat", "sum", "film", "gated"}
    assert "dataset" in catalog["config_schema"]["required"]
    assert catalog["limits"]["max_epochs"] == 50 and catalog["limits"]["max_points_per_request"] == 50_000
