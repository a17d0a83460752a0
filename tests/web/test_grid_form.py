"""A grid from the New run form in Chromium: methods x fusions x seeds submitted at once, watched on its experiment's page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import Console, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def fill_small_synthetic(page: Page) -> None:
    page.goto("/runs/new")
    page.select_option("#dataset", "synthetic")
    page.locator("#dataset-options summary").click()
    page.get_by_label("Train size").fill("400")
    page.get_by_label("Epochs").fill("3")
    page.get_by_label("Device").fill("cpu")


def test_a_two_by_one_by_two_grid_from_the_form_fills_its_experiments_table_as_runs_finish(page: Page):
    fill_small_synthetic(page)
    page.get_by_label("Joint training (vanilla)", exact=True).check()  # MILES is checked already: two methods
    expect(page.get_by_label("concat", exact=True)).to_be_checked()
    expect(page.get_by_label("Tau")).to_be_visible()  # MILES's own hyperparameters stay beside the other method
    page.get_by_label("Seeds").fill("0, 1")
    page.get_by_label("Experiment").fill("grid from the form")
    submit = page.get_by_role("button", name="Start a grid of 4 runs")
    expect(submit).to_be_visible()
    submit.click()
    page.wait_for_url(re.compile(r"/experiments/\d+$"))

    expect(page.locator("#experiment-name")).to_have_text("grid from the form")
    expect(page.locator("#runs-table tbody tr")).to_have_count(4)
    rows = page.locator(".results-table tbody tr:not(.group-row)")
    expect(rows.locator("th")).to_have_text(["joint", "miles"])
    expect(page.locator(".results-table")).to_contain_text(re.compile(r"queued|running"))  # before the runs end
    for row in (rows.nth(0), rows.nth(1)):
        expect(row.locator("td").nth(1)).to_have_text("2", timeout=180_000)  # both seeds in, as each run finished
        expect(row.locator("td").nth(2)).to_have_text(re.compile(r"^\d\.\d{3} ± \d\.\d{3}$"))  # fused, best epoch
        expect(row.locator("td").nth(6)).to_have_text(re.compile(r"^\d\.\d{3} ± \d\.\d{3}$"))  # fused, last epoch
    expect(page.locator(".results-table .group-row")).to_contain_text("dominant")
    screenshot(page, "experiment-grid")


def test_a_grid_without_an_experiment_is_answered_next_to_the_experiment_field(page: Page, console: Console):
    console.expect("status of 422")  # the refused grid: that is the point here
    fill_small_synthetic(page)
    page.get_by_label("sum", exact=True).check()
    page.get_by_role("button", name="Start a grid of 2 runs").click()
    error = page.locator('.field[data-field="experiment"] .error')
    expect(error).to_have_text("is required")
    expect(page).to_have_url(re.compile(r"/runs/new$"))
