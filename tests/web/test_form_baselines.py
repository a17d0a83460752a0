"""The new-run form builds the baselines from the catalogue: MSLR's per-modality rates, checked by the API."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.services import MilesStack
from tests.web.conftest import Console

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_mslr_dynamic_takes_its_rates_in_the_form_and_shows_the_apis_message_when_they_miss_a_modality(
    page: Page, console: Console, dashboard: MilesStack,
):
    console.expect("status of 422")  # the refused submission is the point of the first half
    page.goto("/runs/new")
    page.select_option("#dataset", "synthetic")
    page.get_by_label("MILES", exact=True).uncheck()
    page.get_by_label("MSLR-Dynamic", exact=True).check()
    expect(page.get_by_label("Window")).to_have_value("5")
    rates = page.get_by_label("Learning rates per modality")
    rates.fill('{"strong": 0.001}')
    page.get_by_label("Epochs").fill("1")
    page.get_by_label("Device").fill("cpu")
    page.get_by_role("button", name="Start run").click()
    error = page.locator('.field[data-field="params.mslr_dynamic.lrs"] .error')
    expect(error).to_have_text("must name exactly the run's modalities (strong, weak); got strong")

    rates.fill('{"strong": 0.001, "weak": 0.0003}')
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    run = dashboard.wait_for_status(run_id, "succeeded")  # the worker trains it: MSLR-Dynamic end to end
    assert run["method"] == "mslr_dynamic"
    assert run["config"]["params"] == {"lrs": {"strong": 0.001, "weak": 0.0003}, "window": 5}
