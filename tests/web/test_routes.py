"""The dashboard's routes, without a browser: page shells, security headers, Plotly, static modules."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest

from server import migrate
from server.api.deps import COOKIE_NAME
from server.app import create_app
from server.db import Database
from server.settings import Settings
from server.store import tokens
from web.routes import plotly_basic_url, plotly_url, static_url

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's test client would prefer httpx2 to httpx
    from fastapi.testclient import TestClient

WEB = Path(__file__).resolve().parents[2] / "web"
PAGES = ("/", "/runs/new", "/runs/new?clone={run}", "/runs/{run}", "/compare?ids=1,2", "/experiments/{experiment}",
         "/login", "/workers", "/sweeps", "/sweeps/new", "/runs/99999", "/nope", "/runs/abc")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'miles.db'}", auth="off")
    database = Database(settings.database_url)
    migrate.upgrade(database.engine)
    database.dispose()
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        yield client


@pytest.fixture
def stored(client: TestClient) -> dict[str, int]:
    """A logged run in an experiment: the ids their pages' addresses name."""
    run = client.post("/api/v1/runs", json={"name": "stored", "execute": False, "experiment": "stored"}).json()
    return {"run": run["id"], "experiment": run["experiment_id"]}


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_a_shell_whose_scripts_are_files_under_a_policy_without_inline_script(
    client: TestClient, stored: dict[str, int], path: str,
):
    response = client.get(path.format(**stored))
    assert response.headers["content-type"].startswith("text/html")
    policy = dict(part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    scripts = re.findall(r"<script\b[^>]*>", response.text)
    # Every script is a file; the one exception is data, which no browser runs (a run or compare page's first data).
    data = {f'<script type="application/json" id="{page}-preloaded">' for page in ("run", "compare")}
    assert scripts and all(" src=" in tag or tag in data for tag in scripts)
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", response.text), "an inline event handler"


def test_the_pages_of_a_stored_run_and_experiment_are_sent(client: TestClient, stored: dict[str, int]):
    for path in ("/runs/{run}", "/experiments/{experiment}", "/runs/new?clone={run}"):
        assert client.get(path.format(**stored)).status_code == 200


@pytest.mark.parametrize(("path", "status", "heading"), [
    ("/runs/99999", 404, "No run 99999"),
    ("/experiments/99999", 404, "No experiment 99999"),
    ("/sweeps/99999", 404, "No sweep 99999"),
    ("/nope", 404, "Page not found"),
    ("/static/js/nope.js", 404, "Page not found"),
    ("/runs/abc", 422, "Invalid address"),
    ("/runs/0", 422, "Invalid address"),
])
def test_a_page_that_does_not_exist_is_an_html_page_with_its_status(client: TestClient, path: str, status: int, heading: str):
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert f"<h1>{heading}</h1>" in response.text


def test_the_invalid_address_page_says_which_part_is_wrong(client: TestClient):
    assert "run_id: " in client.get("/runs/abc").text


@pytest.mark.parametrize(("path", "status"), [("/api/v1/runs/99999", 404), ("/api/v1/nope", 404), ("/api/v1/runs/abc", 422)])
def test_the_api_keeps_answering_json_errors(client: TestClient, path: str, status: int):
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json" and response.json()["detail"]


def test_with_auth_on_only_a_signed_in_visitor_learns_that_a_run_does_not_exist(tmp_path: Path):
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'miles.db'}", auth="on")
    database = Database(settings.database_url)
    migrate.upgrade(database.engine)
    with database.transaction() as session:
        secret = tokens.create(session=session, name="reader")[1]
    database.dispose()
    with TestClient(create_app(settings)) as client:
        assert client.get("/runs/99999").status_code == 200  # the page, whose script leads to the login
        client.cookies.set(COOKIE_NAME, secret)
        assert client.get("/runs/99999").status_code == 404


def test_pages_hold_user_data_only_as_json_which_no_markup_escapes(client: TestClient):
    name = "<img src=x onerror=alert(1)></script><script>alert(2)</script>"
    run = client.post("/api/v1/runs", json={"name": name, "execute": False}).json()
    page = client.get(f"/runs/{run['id']}").text
    # The run page holds its first data (the run, its metrics and events) as a JSON block, HTML-escaped.
    blocks = re.findall(r'<script type="application/json" id="run-preloaded">(.*?)</script>', page, re.DOTALL)
    assert len(blocks) == 1
    assert json.loads(blocks[0])["run"]["name"] == name
    outside = page.replace(blocks[0], "")
    assert "onerror" not in outside and "img src" not in outside and "alert(" not in outside
    assert "<" not in blocks[0] and ">" not in blocks[0]


def test_a_run_page_holds_the_first_answers_of_the_api(client: TestClient):
    run = client.post("/api/v1/runs", json={"name": "preloaded", "execute": False}).json()
    client.post(f"/api/v1/runs/{run['id']}/metrics", json={"points": [{"key": "loss/train", "step": 1, "value": 0.5}]})
    client.post(f"/api/v1/runs/{run['id']}/events", json={"events": [{"kind": "note", "message": "hello"}]})
    page = client.get(f"/runs/{run['id']}").text
    block = re.search(r'<script type="application/json" id="run-preloaded">(.*?)</script>', page, re.DOTALL)[1]
    preloaded = json.loads(block)
    assert preloaded["run"] == client.get(f"/api/v1/runs/{run['id']}").json()
    assert preloaded["metrics"] == client.get(f"/api/v1/runs/{run['id']}/metrics", params={"max_points": 2000}).json()
    assert preloaded["events"] == client.get(f"/api/v1/runs/{run['id']}/events").json()["items"]


def test_the_compare_page_holds_the_first_answers_of_the_api_for_the_runs_it_names(client: TestClient):
    made = [client.post("/api/v1/runs", json={"name": f"compared {n}", "execute": False}).json()["id"] for n in range(3)]
    for run_id in made:
        client.post(f"/api/v1/runs/{run_id}/metrics", json={"points": [
            {"key": key, "step": step, "value": run_id + step / 10}
            for step in range(1, 2500) for key in ("metric/val/fused", "util/delta", "loss/train")
        ]})
    first, second, _ = made
    # As compare.js reads ?ids=: whole numbers, each once, in their order; the rest left out.
    page = client.get(f"/compare?ids={second}, {first},{second},x,-3,0").text
    block = re.search(r'<script type="application/json" id="compare-preloaded">(.*?)</script>', page, re.DOTALL)[1]
    preloaded = json.loads(block)
    ids = [second, first]
    assert preloaded["ids"] == ids
    assert preloaded["runs"] == client.get(
        "/api/v1/runs", params={"id": ids, "limit": 500, "latest": "metric/*,loss/*,util/*,lr/*"}
    ).json()
    assert preloaded["results"] == client.get("/api/v1/results", params={"id": ids}).json()
    assert preloaded["metrics"] == {
        str(run_id): client.get(f"/api/v1/runs/{run_id}/metrics", params={
            "keys": "metric/val/fused,util/delta", "max_points": 1000,
        }).json() for run_id in ids
    }
    assert all(len(s["steps"]) <= 1000 for m in preloaded["metrics"].values() for s in m["series"].values())
    assert "compare-preloaded" not in client.get("/compare").text  # no runs named: nothing to hold


def test_plotly_comes_compressed_and_cacheable_from_the_installed_package(client: TestClient):
    response = client.get(plotly_url(), headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert "immutable" in response.headers["cache-control"]
    packaged = files("plotly").joinpath("package_data", "plotly.min.js").read_bytes()
    assert response.content == packaged  # httpx decodes the gzip body
    again = client.get(plotly_url(), headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304


def test_the_run_and_compare_pages_load_plotlys_basic_bundle_compressed_and_cacheable(client: TestClient):
    run = client.post("/api/v1/runs", json={"name": "drawn", "execute": False}).json()
    for address in (f"/runs/{run['id']}", "/compare"):
        assert plotly_basic_url() in client.get(address).text and plotly_url() not in client.get(address).text
    response = client.get(plotly_basic_url(), headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip" and "immutable" in response.headers["cache-control"]
    assert int(response.headers["content-length"]) < 500_000  # compressed, against 1.4 MB for the full bundle
    assert response.content.startswith(b"/**\n* plotly.js (basic - minified) v4.1.1")


def test_pages_load_the_static_files_under_a_digest_compressed_and_cached_for_good(client: TestClient):
    page = client.get("/").text
    module = re.search(r'src="(/assets/[0-9a-f]{16}/js/session\.js)"', page)
    assert module, page
    response = client.get(module[1], headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.content == (WEB / "static" / "js" / "session.js").read_bytes()
    stale = client.get(module[1].replace(static_url(), "/assets/0123456789abcdef"))
    assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"  # an old page still works
    assert client.get(f"{static_url()}/js/nope.js").status_code == 404


def test_static_modules_are_javascript_and_revalidated(client: TestClient):
    response = client.get("/static/js/run.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_every_module_the_templates_load_and_every_import_exists():
    static = WEB / "static"
    referenced = {
        match for template in (WEB / "templates").glob("*.html")
        for match in re.findall(r'src="\{\{ static \}\}/([^"]+)"', template.read_text())
    }
    pending, seen = list(referenced), set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        source = static / path
        assert source.is_file(), f"{path} is loaded but missing"
        for target in re.findall(r'^import .* from "(\./[^"]+)";$', source.read_text(), re.MULTILINE):
            pending.append((Path(path).parent / target).as_posix())
    assert {"js/runs.js", "js/form.js", "js/run.js", "js/compare.js", "js/experiment.js", "js/login.js", "js/workers.js",
            "js/system-card.js", "js/sparkline.js"} <= seen


def test_the_web_package_imports_nothing_from_the_server_or_the_worker():
    code = "import sys, web, web.routes; print(sorted({n.split('.')[0] for n in sys.modules} & {'server', 'worker', 'trainer'}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"

