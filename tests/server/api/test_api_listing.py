"""GET /api/v1/runs: filters, sorting and cursor pagination."""

from __future__ import annotations

import pytest

RUNS = "/api/v1/runs"


def names(response) -> list[str]:
    return [run["name"] for run in response.json()["items"]]


@pytest.fixture
def three_runs(make_run, client):
    a = make_run(name="alpha", tags=["sweep", "tau"], config={"method": "miles"})
    b = make_run(name="beta", tags=["sweep"], config={"method": "joint", "fusion": "sum", "device": "cpu"})
    c = client.post(RUNS, json={"execute": False, "name": "Gamma loop", "tags": ["mine"]}).json()
    return a, b, c


def test_runs_are_listed_newest_first_by_default(client, three_runs):
    assert names(client.get(RUNS)) == ["Gamma loop", "beta", "alpha"]


@pytest.mark.parametrize(("params", "expected"), [
    ({"status": "running"}, ["Gamma loop"]),
    ({"status": ["queued", "running"]}, ["Gamma loop", "beta", "alpha"]),
    ({"method": "joint"}, ["beta"]),
    ({"dataset": "mfeat"}, ["beta", "alpha"]),
    ({"fusion": "sum"}, ["beta"]),
    ({"tag": "sweep"}, ["beta", "alpha"]),
    ({"tag": ["sweep", "tau"]}, ["alpha"]),
    ({"q": "GAM"}, ["Gamma loop"]),
    ({"q": "%"}, []),
    ({"experiment": "no such experiment"}, []),
])
def test_filters_narrow_the_list(client, three_runs, params, expected):
    assert names(client.get(RUNS, params=params)) == expected


def test_ids_select_runs_to_compare(client, three_runs):
    a, _, c = three_runs
    assert names(client.get(RUNS, params={"id": [a["id"], c["id"]]})) == ["Gamma loop", "alpha"]


@pytest.mark.parametrize(("sort", "expected"), [
    ("name", ["Gamma loop", "alpha", "beta"]),
    ("-name", ["beta", "alpha", "Gamma loop"]),
    ("created_at", ["alpha", "beta", "Gamma loop"]),
    ("status", ["alpha", "beta", "Gamma loop"]),
])
def test_runs_sort_by_any_offered_key(client, three_runs, sort, expected):
    assert names(client.get(RUNS, params={"sort": sort})) == expected


def test_pages_follow_the_cursor_to_the_end(client, make_run):
    for index in range(7):
        make_run(name=f"run {index}")
    seen, cursor = [], None
    while True:
        page = client.get(RUNS, params={"limit": 3, "sort": "name"} | ({"cursor": cursor} if cursor else {})).json()
        seen += [run["name"] for run in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"run {index}" for index in range(7)]


def test_an_unknown_sort_names_the_allowed_ones(client):
    response = client.get(RUNS, params={"sort": "accuracy"})
    assert response.status_code == 422
    assert "created_at" in response.json()["errors"][0]["message"] and response.json()["errors"][0]["field"] == "sort"


@pytest.mark.parametrize("cursor", ["garbage", "eyJzb3J0IjoibmFtZSJ9", "W10"])
def test_a_forged_cursor_is_refused(client, cursor):
    response = client.get(RUNS, params={"cursor": cursor})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "cursor"


def test_a_cursor_of_another_sort_is_refused(client, make_run):
    for _ in range(2):
        make_run()
    cursor = client.get(RUNS, params={"limit": 1, "sort": "name"}).json()["next_cursor"]
    response = client.get(RUNS, params={"limit": 1, "sort": "status", "cursor": cursor})
    assert response.status_code == 422 and "belongs to sort 'name'" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("name", ["q", "method", "dataset", "fusion", "experiment"])
def test_a_filter_holding_a_nul_is_422_naming_it(client, name):
    # PostgreSQL cannot hold NUL in a text parameter: it used to answer 500.
    response = client.get("/api/v1/runs", params={name: "a\x00b"})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0] == {"field": name, "message": "may not contain NUL characters"}
