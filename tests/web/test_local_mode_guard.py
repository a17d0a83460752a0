"""Local mode in a real browser: another site's form cannot cancel a run, and a rebound name is refused.

Chromium resolves ``rebind.test`` to 127.0.0.1 (``--host-resolver-rules``), as a DNS rebinding
attack makes a victim's browser do with the attacker's own name.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.sync_api import Browser

from tests.conftest import free_port
from tests.services import MilesStack
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.worker]


@pytest.fixture(scope="module")
def rebinding_browser(browser: Browser) -> Iterator[Browser]:
    """A second Chromium, of the session's Playwright, that resolves rebind.test to 127.0.0.1."""
    launched = browser.browser_type.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP rebind.test 127.0.0.1"],
    )
    yield launched
    launched.close()


@pytest.fixture
def attacker_site() -> Iterator[tuple[str, list[str]]]:
    """Another origin (localhost on another port) whose page posts a form to a given address at once."""
    pages: list[str] = []

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            body = pages[-1].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}", pages
    finally:
        server.shutdown()
        server.server_close()


def logged_run(dashboard: MilesStack) -> dict:
    with dashboard.api as api:
        return api.post("/runs", json={"execute": False, "name": "attacked"}).raise_for_status().json()


def test_another_sites_form_cannot_cancel_a_run(rebinding_browser: Browser, dashboard: MilesStack, attacker_site):
    assert dashboard.server is not None
    run = logged_run(dashboard)
    site, pages = attacker_site
    target = f"{dashboard.server.url}/api/v1/runs/{run['id']}/cancel"
    pages.append(f'<!doctype html><form method="post" action="{target}"></form><script>document.forms[0].submit()</script>')
    context = rebinding_browser.new_context()
    page = context.new_page()
    with page.expect_navigation(url=target) as navigation:
        page.goto(site)
    answer = navigation.value
    assert answer is not None and answer.status == 403 and "cross-site" in answer.text()
    context.close()
    assert dashboard.run(run["id"])["cancel_requested"] is False


def test_a_name_rebound_to_the_machine_is_refused(rebinding_browser: Browser, dashboard: MilesStack):
    assert dashboard.server is not None
    port = dashboard.server.url.rsplit(":", 1)[1]
    context = rebinding_browser.new_context()
    page = context.new_page()
    answer = page.goto(f"http://rebind.test:{port}/")
    assert answer is not None and answer.status == 421 and "DNS rebinding" in answer.text()
    # The same page, reached as 127.0.0.1, is served: the refusal is the name's.
    assert httpx.get(f"{dashboard.server.url}/", timeout=10).status_code == 200
    context.close()
