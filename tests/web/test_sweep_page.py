"""The New sweep form and the sweep page in Chromium, against the real server and worker of the session."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import Console, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def fill_the_form(page: Page, *, lr_low: str) -> None:
    page.goto("/sweeps/new")
    page.wait_for_selector("#sweep-form:not([aria-busy])")
    page.select_option("#dataset", "synthetic")
    page.locator("#dataset-options summary").click()
    for label, value in (("Train size", "96"), ("Val size", "32"), ("Test size", "32"), ("Dim", "8"), ("Classes", "3")):
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_label("Epochs", exact=True).fill("40")  # trials that last while the page watches, even on an idle machine
    page.get_by_label("Device").fill("cpu")
    lr = page.locator('.field[data-field="space.lr"]')
    lr.get_by_role("checkbox").check()
    lr.get_by_label("Learning rate: lowest").fill(lr_low)
    lr.get_by_label("Learning rate: highest").fill("0.03")
    page.get_by_label("Trials per method").fill("3")
    page.get_by_label("Runs at once").fill("1")
    page.get_by_label("Seeds of the best").fill("0")
    page.get_by_label("Name", exact=True).fill("from the form")


def points(page: Page, chart: str) -> int:
    return page.evaluate(f"() => (document.getElementById('{chart}').data ?? []).reduce((n, t) => n + t.x.length, 0)")


def test_a_bad_range_is_answered_next_to_its_row(page: Page, console: Console):
    console.expect("status of 422")  # the refused request is the point here
    fill_the_form(page, lr_low="0")
    page.get_by_role("button", name="Start sweep").click()

    error = page.locator('.field[data-field="space.lr"] .error')
    expect(error).to_have_text("a log range needs low > 0 (got 0.0)")  # the form searches a rate on a log scale
    expect(page.locator("#form-alert")).to_contain_text("One field needs attention")
    expect(page).to_have_url(re.compile(r"/sweeps/new$"))


def test_a_sweep_started_from_the_form_shows_its_best_so_far_growing(page: Page):
    fill_the_form(page, lr_low="0.001")
    page.get_by_role("button", name="Start sweep").click()
    page.wait_for_url(re.compile(r"/sweeps/\d+$"))
    expect(page.locator("#sweep-name")).to_have_text("from the form")

    chart = page.locator("#chart-best")
    expect(chart).to_have_attribute("data-state", "drawn", timeout=300_000)
    first = points(page, "chart-best")
    page.wait_for_function(f"() => (document.getElementById('chart-best').data ?? []).reduce((n, t) => n + t.x.length, 0) > {first}",
                           timeout=300_000)
    expect(page.locator("#sweep-status")).to_have_text("Succeeded", timeout=300_000)
    expect(page.locator("#trials-table tbody tr")).to_have_count(3)
    expect(page.locator("#chart-parcoords")).to_have_attribute("data-state", "drawn")
    expect(page.locator("#chart-parcoords .no-webgl")).to_have_count(0)
    screenshot(page, "sweep-page")
