"""Free-form JSON has documented size limits (422 beyond, naming the field and the limit, nothing stored
lost), and a list of runs carries in each row only the latest values the dashboard's tables show."""

from __future__ import annotations

import pytest

from server.schemas import MAX_EVENT_DATA_BYTES, MAX_PARAMS_BYTES, MAX_SUMMARY_BYTES

RUNS = "/api/v1/runs"


def document_of(size: int) -> dict[str, str]:
    """A JSON object of exactly ``size`` bytes, compact: {"a":"xx...x"}."""
    return {"a": "x" * (size - len('{"a":""}'))}


def logged(client, **fields) -> dict:
    response = client.post(RUNS, json={"execute": False, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def test_params_at_the_limit_are_stored_and_one_byte_more_is_422_naming_field_and_limit(client):
    assert logged(client, params=document_of(MAX_PARAMS_BYTES))["params"] == document_of(MAX_PARAMS_BYTES)
    response = client.post(RUNS, json={"execute": False, "params": document_of(MAX_PARAMS_BYTES + 1)})
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error == {"field": "params", "message": f"is {MAX_PARAMS_BYTES + 1:,} bytes of JSON; at most {MAX_PARAMS_BYTES:,} are allowed"}


def test_a_summary_too_big_is_refused_and_the_stored_one_kept(client):
    run = logged(client)
    assert client.patch(f"{RUNS}/{run['id']}", json={"summary": {"best_epoch": 3}}).status_code == 200
    response = client.patch(f"{RUNS}/{run['id']}", json={"summary": document_of(MAX_SUMMARY_BYTES + 1), "name": "new"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "summary"
    kept = client.get(f"{RUNS}/{run['id']}").json()
    assert kept["summary"] == {"best_epoch": 3} and kept["name"] != "new"


def test_new_params_too_big_are_refused_and_the_stored_ones_kept(client):
    run = logged(client, params={"lr": 0.1})
    response = client.patch(f"{RUNS}/{run['id']}", json={"params": document_of(MAX_PARAMS_BYTES + 1)})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "params"
    assert client.get(f"{RUNS}/{run['id']}").json()["params"] == {"lr": 0.1}


def test_an_events_data_too_big_is_refused_with_its_index_and_none_of_the_batch_is_stored(client):
    run = logged(client)
    response = client.post(f"{RUNS}/{run['id']}/events", json={"events": [
        {"kind": "note", "message": "fits", "data": document_of(MAX_EVENT_DATA_BYTES)},
        {"kind": "note", "message": "too big", "data": document_of(MAX_EVENT_DATA_BYTES + 1)},
    ]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "events.1.data"
    assert f"{MAX_EVENT_DATA_BYTES:,}" in response.json()["errors"][0]["message"]
    assert client.get(f"{RUNS}/{run['id']}/events").json()["items"] == []


def test_a_clones_overrides_too_big_are_refused(client, make_run):
    run = make_run()
    response = client.post(f"{RUNS}/{run['id']}/clone", json={"overrides": document_of(MAX_PARAMS_BYTES + 1)})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "overrides"


def test_the_catalogue_states_the_limits(client):
    limits = client.get("/api/v1/catalog").json()["limits"]
    assert (limits["max_params_bytes"], limits["max_summary_bytes"], limits["max_event_data_bytes"]) == (
        MAX_PARAMS_BYTES, MAX_SUMMARY_BYTES, MAX_EVENT_DATA_BYTES,
    )


def many_keys(client, run_id: int, count: int) -> None:
    points = [{"key": f"metric/val/class_{k}", "step": 1, "value": 0.5} for k in range(count)]
    points += [{"key": key, "step": 1, "value": 0.25} for key in ("util/delta", "loss/train", "metric/val/fused")]
    assert client.post(f"{RUNS}/{run_id}/metrics", json={"points": points}).status_code == 200


def test_a_list_row_carries_only_the_latest_values_the_tables_show(client, make_run):
    run = make_run()  # modalities pix and fou
    points = [{"key": key, "step": 2, "value": 0.5} for key in (
        "util/delta", "loss/train", "loss/val", "metric/val/fused", "metric/val/pix", "metric/val/fou", "util/pix",
        "util/fou", "lr/pix", "metric/train/pix", "metric/val/class_3",
    )]
    client.post(f"{RUNS}/{run['id']}/metrics", json={"points": points}).raise_for_status()
    (row,) = client.get(RUNS).json()["items"]
    assert sorted(row["latest"]) == sorted([
        "util/delta", "loss/train", "loss/val", "metric/val/fused", "metric/val/pix", "metric/val/fou", "util/pix", "util/fou",
    ])
    assert len(client.get(f"{RUNS}/{run['id']}").json()["latest"]) == len(points)  # one run: all of them


def test_a_list_names_the_latest_values_it_wants_with_keys_and_prefixes(client):
    run = logged(client)
    many_keys(client, run["id"], 5)
    rows = client.get(RUNS, params={"latest": "loss/train,metric/val/class_*"}).json()["items"]
    assert sorted(rows[0]["latest"]) == ["loss/train", *(f"metric/val/class_{k}" for k in range(5))]
    assert len(client.get(RUNS, params={"latest": "*"}).json()["items"][0]["latest"]) == 8


def test_a_latest_that_is_not_a_key_is_422_naming_the_parameter(client):
    response = client.get(RUNS, params={"latest": "a,b\x01"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "latest"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_five_runs_with_the_biggest_params_and_two_thousand_keys_list_in_a_bounded_size(client):
    for index in range(5):
        many_keys(client, logged(client, name=f"big {index}", params=document_of(MAX_PARAMS_BYTES))["id"], 2000)
    response = client.get(RUNS)
    print(f"\nGET /runs with 5 runs of {MAX_PARAMS_BYTES:,}-byte params and 2,003 keys each: {len(response.content):,} bytes")
    assert len(response.content) < 5 * (MAX_PARAMS_BYTES + 4096)  # the params, and a few kilobytes of the rest
