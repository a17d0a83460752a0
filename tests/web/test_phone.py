"""The pages on a phone, 390 px wide, in Chromium: nothing scrolls sideways, the runs table is a list of
cards with status and progress in view, and Plotly's toolbar keeps off the plots."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import FinishedRuns, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.worker]

PHONE = {"width": 390, "height": 844}
SIDEWAYS = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def in_view(page: Page, selector: str) -> list[bool]:
    """For each element matching ``selector``: whether it is shown and lies within the viewport's width."""
    return page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)].map((node) => {
            const box = node.getBoundingClientRect();
            return box.width > 0 && box.left >= 0 && box.right <= window.innerWidth; })""",
        selector,
    )


@pytest.mark.parametrize("where", ["runs", "experiment"])
def test_the_runs_table_shows_each_runs_status_and_progress_without_scrolling_sideways(
    page: Page, finished_runs: FinishedRuns, where: str,
):
    page.set_viewport_size(PHONE)
    page.goto("/" if where == "runs" else f"/experiments/{finished_runs.experiment_id}")
    expect(page.locator("#runs-table tbody tr").first).to_be_visible()
    rows = page.locator("#runs-table tbody tr").count()
    assert rows >= 3
    for cell in ("td.col-status .badge", "td.col-progress .progress", "th.col-name .run-link", "td.col-select input"):
        assert in_view(page, f"#runs-table tbody {cell}") == [True] * rows, cell
    table = page.locator("#runs-table").evaluate("(table) => table.parentElement.scrollWidth - table.parentElement.clientWidth")
    assert table <= 0 and page.evaluate(SIDEWAYS) <= 0
    screenshot(page, f"phone-{where}")


def test_no_page_scrolls_sideways_on_a_phone(page: Page, finished_runs: FinishedRuns):
    page.set_viewport_size(PHONE)
    ids = ",".join(str(run["id"]) for run in (*finished_runs.miles, finished_runs.joint))
    for path, ready in (
        ("/runs/new", "#run-form:not([aria-busy])"), (f"/runs/{finished_runs.miles[0]['id']}", "#summary table"),
        (f"/compare?ids={ids}", ".results-table"), ("/login", "#login-form"),
    ):
        page.goto(path)
        page.wait_for_selector(ready)
        assert page.evaluate(SIDEWAYS) <= 0, path


def test_plotlys_toolbar_sits_above_the_plot_instead_of_covering_its_top(page: Page, finished_runs: FinishedRuns):
    page.set_viewport_size(PHONE)
    page.goto(f"/runs/{finished_runs.miles[0]['id']}")
    page.wait_for_function("() => document.getElementById('chart-losses').dataset.state === 'drawn'")
    for chart in ("balance", "lr", "metrics", "losses"):
        page.locator(f"#chart-{chart} .nsewdrag").hover()  # a tap on a phone
        toolbar = page.locator(f"#chart-{chart} .modebar")
        expect(toolbar).to_be_visible()
        bottom = toolbar.evaluate("(node) => node.getBoundingClientRect().bottom")
        top = page.locator(f"#chart-{chart} .nsewdrag").evaluate("(node) => node.getBoundingClientRect().top")
        assert bottom <= top, f"the toolbar of chart-{chart} covers the top of its plot ({bottom:.0f} > {top:.0f})"
