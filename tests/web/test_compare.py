"""Comparing runs in Chromium: chosen in the runs table, grouped by method with mean ± std over seeds."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import FinishedRuns, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_two_seeds_chosen_in_the_table_compare_as_mean_and_standard_deviation(page: Page, finished_runs: FinishedRuns):
    first, second = finished_runs.miles
    page.goto("/?q=miles%20seed")
    page.get_by_label(f"Select run {first['name']}").check()
    page.get_by_label(f"Select run {second['name']}").check()
    page.get_by_role("button", name="Compare (2)").click()
    page.wait_for_url(re.compile(rf"/compare\?ids={first['id']},{second['id']}$"))

    row = page.locator(".results-table tbody tr", has=page.get_by_role("rowheader", name="miles"))
    expect(row).to_have_count(1)
    cells = row.locator("td")
    expect(cells.nth(1)).to_have_text("2")  # seeds
    fused = [run["summary"]["metric/test/fused"] for run in (first, second)]
    mean, spread = sum(fused) / 2, abs(fused[0] - fused[1]) / 2**0.5  # sample std of two values
    expect(cells.nth(2)).to_have_text(f"{mean:.3f} ± {spread:.3f}")
    expect(page.locator(".results-table")).to_contain_text("dominant")
    expect(page.locator(".definitions")).to_contain_text("final utilization gap")
    page.wait_for_function("() => document.getElementById('chart-gap').data.length === 2")
    page.wait_for_function("() => document.getElementById('chart-metric').data.length === 2")
    chips = page.locator("#run-chips li")
    expect(chips).to_have_count(2)
    expect(chips.first).to_contain_text("Succeeded")  # the status dot's colour, said in words
    swatches = "() => [...document.querySelectorAll('#run-chips .swatch')].map((s) => getComputedStyle(s).backgroundColor)"
    assert page.evaluate(swatches) == ["rgb(47, 111, 214)"] * 2  # --series-1: two seeds of one method share a colour
    screenshot(page, "compare")
    page.select_option("#color-by", "run")
    assert page.evaluate(swatches) == ["rgb(47, 111, 214)", "rgb(224, 115, 29)"]  # --series-1, --series-2


def test_an_experiment_lists_its_runs_and_groups_them_by_method(page: Page, finished_runs: FinishedRuns):
    page.goto(f"/experiments/{finished_runs.experiment_id}")
    expect(page.locator("#experiment-name")).to_have_text("browser tests")
    expect(page.locator("#runs-table tbody tr")).to_have_count(3)
    methods = page.locator(".results-table tbody tr:not(.group-row) th")
    expect(methods).to_have_text(["joint", "miles"])
    expect(page.locator("#runs-table th[data-col=fused]")).to_have_attribute("title", re.compile("^Fused head"))
    compare = page.get_by_role("button", name="Compare")
    expect(compare).to_be_disabled()
    expect(compare).to_have_attribute("title", "Select two or more runs to compare")
    screenshot(page, "experiment")
    first, second = finished_runs.miles
    page.get_by_label(f"Select run {second['name']}").check()
    page.get_by_label(f"Select run {first['name']}").check()
    page.get_by_role("button", name="Compare (2)").click()
    page.wait_for_url(re.compile(rf"/compare\?ids={first['id']},{second['id']}$"))
