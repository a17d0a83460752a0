"""/docs and /redoc in Chromium: they render from the installed package alone (no request leaves the
machine) under the pages' Content-Security-Policy (a violation is a console error, which fails the test)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from tests.services import MilesStack
from tests.web.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def offline(page: Page, dashboard: MilesStack) -> list[str]:
    """Refuse every request to another host than the dashboard's; the list of those refused."""
    assert dashboard.server is not None
    own = urlsplit(dashboard.server.url).netloc
    refused: list[str] = []

    def guard(route: Route) -> None:
        if urlsplit(route.request.url).netloc in (own, "") or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.context.route("**/*", guard)
    return refused


def test_swagger_ui_renders_offline_under_the_pages_policy(page: Page, dashboard: MilesStack):
    refused = offline(page, dashboard)
    response = page.goto("/docs")
    assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(".swagger-ui .title")).to_contain_text("MILES dashboard API")
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/runs/{run_id}/stream").first).to_be_visible()
    page.locator(".opblock-summary", has_text="/api/v1/health").first.click()
    expect(page.get_by_role("button", name="Try it out")).to_be_visible()
    screenshot(page, "api-docs")
    assert refused == []


def test_redoc_renders_offline_under_the_pages_policy(page: Page, dashboard: MilesStack):
    refused = offline(page, dashboard)
    response = page.goto("/redoc")
    assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator("h1", has_text="MILES dashboard API")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Submit a run, or start logging one").first).to_be_attached()
    screenshot(page, "api-redoc")
    assert refused == []
