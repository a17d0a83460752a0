"""/api/v1/runs/{id}/artifacts: a run's files, such as its best checkpoint."""

from __future__ import annotations

import pytest


@pytest.fixture
def run_with_files(make_run, settings):
    run = make_run()
    root = settings.run_artifacts(run["id"])
    (root / "plots").mkdir(parents=True)
    (root / "best.pt").write_bytes(b"best weights")
    (root / "plots" / "gap.png").write_bytes(b"png")
    return run


def test_a_runs_files_are_listed_with_their_sizes(client, run_with_files):
    items = client.get(f"/api/v1/runs/{run_with_files['id']}/artifacts").json()["items"]
    assert [(item["path"], item["size"]) for item in items] == [("best.pt", 12), ("plots/gap.png", 3)]


def test_a_file_downloads_as_an_attachment(client, run_with_files):
    response = client.get(f"/api/v1/runs/{run_with_files['id']}/artifacts/best.pt")
    assert response.content == b"best weights" and "best.pt" in response.headers["content-disposition"]


@pytest.mark.parametrize("path", ["missing.pt", "%2e%2e/%2e%2e/miles.db", "..%2f..%2fmiles.db", "plots"])
def test_only_files_inside_the_runs_directory_are_served(client, run_with_files, path):
    response = client.get(f"/api/v1/runs/{run_with_files['id']}/artifacts/{path}")
    assert response.status_code == 404 and "has no file" in response.json()["detail"]


def test_a_run_without_files_lists_none(client, make_run):
    assert client.get(f"/api/v1/runs/{make_run()['id']}/artifacts").json() == {"items": []}
