"""Every page in Chromium, light and dark: no console error (CSP violations included), a screenshot each."""

from __future__ import annotations

import re
import subprocess

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.services import MILES, MilesStack
from tests.web.conftest import VIEWPORT, Console, FinishedRuns, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.worker]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_renders_without_a_console_error(page: Page, finished_runs: FinishedRuns, scheme: str):
    page.emulate_media(color_scheme=scheme)
    miles, joint = finished_runs.miles[0], finished_runs.joint
    ids = f"{miles['id']},{finished_runs.miles[1]['id']},{joint['id']}"
    pages = {
        "runs": ("/", "#runs-table tbody tr"),
        "new-run": ("/runs/new", "#run-form:not([aria-busy])"),
        "clone": (f"/runs/new?clone={miles['id']}", "#run-form:not([aria-busy])"),
        "run": (f"/runs/{miles['id']}", "#summary table"),
        "compare": (f"/compare?ids={ids}", ".results-table"),
        "experiment": (f"/experiments/{finished_runs.experiment_id}", ".results-table"),
        "login": ("/login", "#login-form"),
        "workers": ("/workers", "#workers-table tbody tr"),
    }
    for name, (path, ready) in pages.items():
        page.goto(path)
        page.wait_for_selector(ready)
        page.wait_for_load_state("networkidle")
        screenshot(page, f"{name}-{scheme}")
    dark_text = page.evaluate("getComputedStyle(document.body).color")
    assert (dark_text == "rgb(228, 232, 238)") == (scheme == "dark")


def test_a_run_that_does_not_exist_is_a_404_page_that_says_so(page: Page, console: Console):
    console.expect("status of 404")
    response = page.goto("/runs/999999")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("No run 999999")
    expect(page.locator(".error-page")).to_contain_text("There is no run 999999; it may have been deleted.")
    page.get_by_role("link", name="Back to the runs").click()
    page.wait_for_url(re.compile(r"/$"))


@pytest.mark.parametrize(("path", "status", "heading"), [("/nope", 404, "Page not found"), ("/runs/abc", 422, "Invalid address")])
def test_an_address_that_is_no_page_shows_an_html_page_with_its_status(page: Page, console: Console, path, status, heading):
    console.expect(f"status of {status}")
    response = page.goto(path)
    assert response is not None and response.status == status
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.locator("pre")).to_have_count(0)  # not JSON shown as text


def test_a_run_deleted_while_its_page_is_open_says_so(page: Page, dashboard: MilesStack, console: Console):
    console.expect("status of 404")
    with dashboard.api as api:
        run = api.post("/runs", json={"name": "deleted under the page", "execute": False}).raise_for_status().json()

    def delete_first(route: Route) -> None:  # the page was sent with the run's data; the run goes before it follows it
        with dashboard.api as api:
            api.delete(f"/runs/{run['id']}")
        route.continue_()

    page.route(f"**/api/v1/runs/{run['id']}/stream*", delete_first)
    page.goto(f"/runs/{run['id']}")
    expect(page.locator("#run-alert")).to_have_text("This run was deleted.")


def server_with_auth(
    browser: Browser, miles_stack, sqlite_database: str, console: Console, token_name: str,
) -> tuple[str, str, BrowserContext, Page]:
    """A `miles server` with auth on, a member token named ``token_name``, and a page in a new context
    whose console errors go to ``console``: (the server's URL, the token, the context, the page)."""
    stack = miles_stack(database_url=sqlite_database, redis=None, auth="on")
    server = stack.start_server()
    token = subprocess.run([MILES, "token", "create", token_name], env=stack.env(), capture_output=True, text=True,
                           check=True).stdout.strip()
    context = browser.new_context(base_url=server.url, viewport=VIEWPORT)
    page = context.new_page()
    page.on("console", lambda message: console.errors.append(message.text) if message.type == "error" else None)
    return server.url, token, context, page


def test_with_auth_on_the_pages_ask_for_a_token_and_keep_it_in_a_cookie(
    browser: Browser, miles_stack, sqlite_database, console: Console,
):
    _, token, context, page = server_with_auth(browser, miles_stack, sqlite_database, console, "browser")
    console.expect("status of 401")  # the refused reads that send the page to the login

    page.goto("/runs/new")
    page.wait_for_url(re.compile(r"/login\?next=%2Fruns%2Fnew$"))
    page.get_by_label("API token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#token-error")).to_be_visible()
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/runs/new$"))
    expect(page.locator("#session-name")).to_have_text("Signed in as browser (member)")
    expect(page.locator("#dataset option")).not_to_have_count(0)
    cookie = next(c for c in context.cookies() if c["name"] == "miles_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""
    context.close()
    assert not console.unexpected(), console.unexpected()


def test_the_menu_signs_out_and_revokes_the_token_everywhere(browser: Browser, miles_stack, sqlite_database, console: Console):
    url, token, context, page = server_with_auth(browser, miles_stack, sqlite_database, console, "laptop")

    page.goto("/login")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#session-name")).to_have_text("Signed in as laptop (member)")
    questions: list[str] = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Sign out and revoke token").click()
    page.wait_for_url(re.compile(r"/login$"))

    assert questions and '"laptop"' in questions[0]
    assert not any(c["name"] == "miles_token" for c in context.cookies())
    refused = httpx.get(f"{url}/api/v1/runs", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    context.close()
    assert not console.unexpected(), console.unexpected()
