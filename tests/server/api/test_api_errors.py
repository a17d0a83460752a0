"""Whatever a client sends, the answer is a 4xx that says what was wrong, never a 5xx."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

RUNS = "/api/v1/runs"
JSON = {"content-type": "application/json"}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def assert_helpful(response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["detail"], str) and len(body["detail"]) > 10
    if field is not None:
        assert field in [error["field"] for error in body["errors"]], body


@pytest.mark.parametrize(("body", "field"), [
    ({"config": {"dataset": "mfeat", "epochs": "ten"}}, "config.epochs"),
    ({"config": {"dataset": "mfeat", "epochs": 1e400}}, "config.epochs"),
    ({"config": {"dataset": "mfeat", "seed": 10**100}}, "config.seed"),
    ({"config": {"dataset": "mfeat", "modalities": "pix"}}, "config.modalities"),
    ({"config": {"dataset": "mfeat", "modalities": ["pix"]}}, "config.modalities"),
    ({"config": {"dataset": "imagenet"}}, "config.dataset"),
    ({"config": {"dataset": "mfeat", "device": "tpu"}}, "config.device"),
    ({"config": "mfeat"}, "config"),
    ({"config": {"dataset": "mfeat"}, "tags": "one"}, "tags"),
    ({"config": {"dataset": "mfeat"}, "tags": ["x" * 101]}, "tags.0"),
    ({"config": {"dataset": "mfeat"}, "name": ""}, "name"),
    ({"config": {"dataset": "mfeat"}, "name": "two\nlines"}, "name"),
    ({"config": {"dataset": "mfeat"}, "execute": {}}, "execute"),
    ({"config": {"dataset": "mfeat"}, "priority": 1}, "priority"),
    ({"execute": False, "params": {"lr": float("inf")}}, "params"),
    ({"config": {"dataset": "folder", "data_path": "a\u0000b"}}, "config"),
    ({"config": {"dataset": "folder", "data_path": "mine", "modalities": ["a\u0000", "b"]}}, "config"),
])
def test_a_bad_submission_names_the_field(client, body, field):
    text = json.dumps(body, allow_nan=True)
    assert_helpful(client.post(RUNS, content=text, headers=JSON), 422, field)


@pytest.mark.parametrize(("body", "status"), [
    (b"{", 400),
    (b'{"config": {"dataset": "mfeat"}', 400),
    (b"", 422),
    (b"[]", 422),
    (b'"run"', 422),
    (b'{"name": "\\ud800"}', 422),
    (b'{"config": {"dataset": "mfeat", "seed": ' + b"9" * 5000 + b"}}", 400),
    (b"\xff\xfe", 400),
])
def test_a_body_that_is_not_a_json_object_is_refused(client, body, status):
    assert_helpful(client.post(RUNS, content=body, headers=JSON), status)


@pytest.mark.parametrize(("body", "content_type"), [
    (b"{", "application/json"), (b'{"points": [', "application/json"), (b"", "application/json"), (b"[]", "application/json"),
    (b'"run"', "application/json"), (b"\xff\xfe", "application/json"), (b'{"points": []}', "text/plain"),
    (b'{"points": []}', None),
])
def test_the_ingest_refuses_a_body_in_the_words_of_every_other_route(client, body, content_type):
    """The ingest parses its body itself (`server.api.deps.JsonBody`); what it says about a body that is
    not a JSON object is what FastAPI's parsing says on the other routes."""
    run_id = client.post(RUNS, json={"execute": False}).json()["id"]
    headers = {"content-type": content_type} if content_type else {}
    ingest = client.post(f"{RUNS}/{run_id}/metrics", content=body, headers=headers)
    submit = client.post(RUNS, content=body, headers=headers)
    assert (ingest.status_code, ingest.json()) == (submit.status_code, submit.json())
    assert_helpful(ingest, ingest.status_code, "body")


@pytest.mark.parametrize(("body", "status", "field"), [
    (b'{"points": [], "name": "x"}', 422, "name"),
    (b'{"points": [{"key": "a", "step": -1, "value": 1}]}', 422, "points.0.step"),
    (b'{"points": [{"key": "\\ud800", "step": 1, "value": 1}]}', 422, "points.0.key"),
    (b'{"points": [{"key": "a", "step": 1, "value": NaN}]}', 422, "points.0.value"),
    (b'{"points": [{"key": "a", "step": ' + b"9" * 50 + b', "value": 1}]}', 422, "points.0.step"),
    (b'{"points": [{"key": "a", "step": ' + b"9" * 5000 + b', "value": 1}]}', 400, "body"),
    (b'{"points": [{"key": "a", "step": 1, "value": 1, "unit": "s"}]}', 422, "points.0.unit"),
])
def test_a_bad_point_is_named(client, body, status, field):
    run_id = client.post(RUNS, json={"execute": False}).json()["id"]
    response = client.post(f"{RUNS}/{run_id}/metrics", content=body, headers=JSON)
    assert_helpful(response, status, field)
    if field == "name":
        assert response.json()["errors"][0]["message"] == "unknown field; allowed fields: points"
    assert client.get(f"{RUNS}/{run_id}/metrics").json()["series"] == {}


def test_the_ingest_takes_any_json_content_type(client):
    run_id = client.post(RUNS, json={"execute": False}).json()["id"]
    body = b'{"points": [{"key": "a", "step": 1, "value": 0.5}]}'
    response = client.post(f"{RUNS}/{run_id}/metrics", content=body, headers={"content-type": "application/vnd.miles+json"})
    assert response.status_code == 200, response.text


def test_a_body_sent_as_another_content_type_is_refused(client):
    response = client.post(RUNS, content=b'{"execute": false}', headers={"content-type": "text/plain"})
    assert_helpful(response, 422, "body")
    assert "application/json" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/runs/4242", None),
    ("PATCH", "/runs/4242", {"name": "x"}),
    ("DELETE", "/runs/4242", None),
    ("POST", "/runs/4242/cancel", None),
    ("POST", "/runs/4242/clone", {}),
    ("POST", "/runs/4242/metrics", {"points": []}),
    ("GET", "/runs/4242/metrics.csv", None),
    ("GET", "/runs/4242/events", None),
    ("GET", "/runs/4242/artifacts", None),
])
def test_an_unknown_run_is_named_in_a_404(client, method, path, body):
    response = client.request(method, f"/api/v1{path}", json=body)
    assert_helpful(response, 404)
    assert response.json()["detail"] == "run 4242 not found"


@pytest.mark.parametrize("run_id", ["0", "-1", "abc", str(2**31), str(10**30)])
def test_an_impossible_run_id_is_refused(client, run_id):
    assert_helpful(client.get(f"{RUNS}/{run_id}"), 422, "run_id")


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 0}, "limit"), ({"limit": "many"}, "limit"), ({"status": "paused"}, "status.0"),
    ({"id": str(2**40)}, "id.0"), ({"q": "x" * 201}, "q"),
])
def test_a_bad_query_parameter_is_named(client, params, field):
    assert_helpful(client.get(RUNS, params=params), 422, field)


def test_an_oversize_body_is_refused_before_it_is_read(make_client, make_settings):
    client = make_client(make_settings(max_request_bytes=4096))
    response = client.post(RUNS, content=b"x" * 5000, headers=JSON)
    assert_helpful(response, 413)
    assert "MILES_MAX_REQUEST_BYTES" in response.json()["detail"]


def test_an_oversize_body_without_a_length_is_refused_as_it_arrives(make_client, make_settings):
    client = make_client(make_settings(max_request_bytes=4096))
    response = client.post(RUNS, content=iter([b'{"name": "', b"x" * 3000, b"x" * 3000, b'"}']), headers=JSON)
    assert_helpful(response, 413)


def test_an_unknown_route_and_a_wrong_method_answer_in_json(client):
    assert_helpful(client.get("/api/v1/nothing"), 404)
    assert_helpful(client.put(RUNS), 405)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=json_values, name=json_values, tags=json_values)
def test_arbitrary_json_never_causes_a_server_error(client, config, name, tags):
    body = json.dumps({"config": config, "name": name, "tags": tags}, allow_nan=True)
    response = client.post(RUNS, content=body, headers=JSON)
    assert response.status_code in (201, 400, 422), response.text
    if response.status_code != 201:
        assert response.json()["detail"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(points=json_values, point=st.dictionaries(st.sampled_from(["key", "step", "value", "time", "x"]), json_values))
def test_arbitrary_json_never_makes_the_ingest_fail(client, points, point):
    run_id = client.post(RUNS, json={"execute": False}).json()["id"]
    for body in ({"points": points}, {"points": [point]}):
        response = client.post(f"{RUNS}/{run_id}/metrics", content=json.dumps(body, allow_nan=True), headers=JSON)
        assert response.status_code in (200, 400, 422), response.text
        if response.status_code != 200:
            assert response.json()["detail"]
