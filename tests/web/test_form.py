"""The new-run form in Chromium: the API's errors next to their fields, seeds, and cloning."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.services import MilesStack, tiny_config
from tests.web.conftest import Console, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_an_out_of_range_hyperparameter_shows_the_apis_message_next_to_its_field(page: Page, console: Console):
    console.expect("status of 422")  # Chromium logs the refused request; that refusal is the point here
    page.goto("/runs/new")
    expect(page.get_by_label("MILES", exact=True)).to_be_checked()  # the default method
    tau = page.get_by_label("Tau")
    tau.fill("2")
    page.get_by_role("button", name="Start run").click()

    field = page.locator('.field[data-field="params.miles.tau"]')  # MILES's tau: each checked method has its own
    error = field.locator(".error")
    expect(error).to_be_visible()
    expect(error).to_have_text("must satisfy 0 <= tau <= 1 (got 2)")
    expect(tau).to_have_attribute("aria-invalid", "true")
    error_id = error.get_attribute("id")
    expect(tau).to_have_attribute("aria-describedby", re.compile(rf"\b{error_id}\b"))
    expect(page.locator("#form-alert")).to_contain_text("One field needs attention")
    expect(page).to_have_url(re.compile(r"/runs/new$"))
    screenshot(page, "new-run-invalid-tau")

    tau.fill("0.3")
    page.get_by_label("Epochs").fill("0")
    page.get_by_role("button", name="Start run").click()
    expect(page.locator('.field[data-field="config.epochs"] .error')).to_have_text("must satisfy 1 <= epochs <= 1000 (got 0)")
    expect(error).to_be_hidden()


def test_several_seeds_create_one_run_each_and_lead_to_the_list_of_them(page: Page, dashboard: MilesStack):
    page.goto("/runs/new")
    page.select_option("#dataset", "synthetic")
    page.get_by_label("Epochs").fill("1")
    page.get_by_label("Device").fill("cpu")
    page.get_by_label("Seeds").fill("3-4")
    page.get_by_label("Name", exact=True).fill("seeded")
    expect(page.get_by_role("button", name="Start 2 runs")).to_be_visible()
    page.get_by_role("button", name="Start 2 runs").click()
    page.wait_for_url(re.compile(r"/\?ids=\d+,\d+$"))
    rows = page.locator("#runs-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("seeded (seed 4)")
    expect(rows.last).to_contain_text("seeded (seed 3)")
    expect(page.locator("#scope")).to_contain_text("the 2 runs just submitted")


def test_clone_fills_the_form_with_the_runs_spec(page: Page, dashboard: MilesStack):
    config = tiny_config(epochs=2, params={"tau": 0.35, "mu": 0.25}, fusion="sum", seed=7)
    run = dashboard.submit(config, name="the original", experiment="cloned things", tags=["a", "b"])
    page.goto(f"/runs/{run['id']}")
    page.get_by_role("link", name="Clone", exact=True).click()
    page.wait_for_url(re.compile(rf"/runs/new\?clone={run['id']}$"))
    expect(page.locator("#form-title")).to_have_text(f"Clone run #{run['id']}")
    expect(page.locator("#dataset")).to_have_value("synthetic")
    expect(page.get_by_label("sum", exact=True)).to_be_checked()
    expect(page.get_by_label("concat", exact=True)).not_to_be_checked()
    expect(page.get_by_label("MILES", exact=True)).to_be_checked()
    expect(page.get_by_label("Joint training (vanilla)", exact=True)).not_to_be_checked()
    expect(page.get_by_label("Tau")).to_have_value("0.35")
    expect(page.get_by_label("Mu")).to_have_value("0.25")
    expect(page.get_by_label("Epochs")).to_have_value("2")
    expect(page.get_by_label("Seeds")).to_have_value("7")
    expect(page.get_by_label("Experiment")).to_have_value("cloned things")
    expect(page.get_by_label("Tags")).to_have_value("a, b")
    expect(page.get_by_label("Train size")).to_have_value("96")


def test_a_clone_of_a_missing_run_still_builds_the_form_and_says_why(page: Page, console: Console):
    console.expect("status of 404")  # the run to clone is not found: that is the point here
    page.goto("/runs/new?clone=999999")
    page.wait_for_selector("#run-form:not([aria-busy])")
    expect(page.locator("#form-alert")).to_have_text("There is no run 999999 to clone; the form starts from the defaults.")
    expect(page.locator("#form-title")).not_to_contain_text("Clone")
    expect(page.locator("#dataset option")).not_to_have_count(0)
    expect(page.get_by_role("button", name="Start run")).to_be_enabled()


def test_an_emptied_field_is_an_error_next_to_it_that_names_its_default(page: Page, dashboard: MilesStack):
    with dashboard.api as api:
        before = len(api.get("/runs", params={"limit": 500}).json()["items"])
    page.goto("/runs/new")
    expect(page.get_by_label("MILES", exact=True)).to_be_checked()  # the default method, whose Tau shows
    tau, epochs = page.get_by_label("Tau"), page.get_by_label("Epochs")
    tau.fill("")
    epochs.fill("")
    expect(tau).to_have_attribute("placeholder", "default 0.2")  # what the empty field would have been
    page.get_by_role("button", name="Start run").click()
    expect(page.locator('.field[data-field="params.miles.tau"] .error')).to_have_text(
        "is empty: enter a value (the default is 0.2)")
    expect(page.locator('.field[data-field="config.epochs"] .error')).to_have_text(
        "is empty: enter a value (the default is 30)")
    expect(tau).to_have_attribute("aria-invalid", "true")
    expect(page).to_have_url(re.compile(r"/runs/new$"))
    with dashboard.api as api:
        assert len(api.get("/runs", params={"limit": 500}).json()["items"]) == before, "nothing was submitted"


def test_a_clone_names_its_own_seed_not_the_one_of_the_run_it_copies(page: Page, dashboard: MilesStack):
    run = dashboard.submit(tiny_config(epochs=1, seed=3), name="seeded twice (seed 3)")
    page.goto(f"/runs/new?clone={run['id']}")
    expect(page.get_by_label("Name", exact=True)).to_have_value("seeded twice")
    page.get_by_label("Seeds").fill("5")
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    clone = dashboard.run(int(page.url.rsplit("/", 1)[1]))
    assert (clone["name"], clone["seed"]) == ("seeded twice (seed 5)", 5)


def test_sgd_and_its_momentum_are_chosen_in_the_form_and_shown_on_the_run_page(page: Page, dashboard: MilesStack, console: Console):
    console.expect("status of 422")  # the momentum given with Adam, refused first
    page.goto("/runs/new")
    page.select_option("#dataset", "synthetic")
    page.get_by_label("Epochs").fill("1")
    page.get_by_label("Device").fill("cpu")
    expect(page.get_by_label("Optimizer")).to_have_value("adam")
    page.get_by_label("Momentum (SGD)").fill("0.5")
    page.get_by_role("button", name="Start run").click()
    expect(page.locator('.field[data-field="config.momentum"] .error')).to_have_text(
        "only SGD has a momentum; with optimizer 'adam' leave it out"
    )
    page.get_by_label("Optimizer").select_option("sgd")
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    run = dashboard.run(int(page.url.rsplit("/", 1)[1]))
    assert (run["config"]["optimizer"], run["config"]["momentum"]) == ("sgd", 0.5)
    expect(page.locator("#details")).to_contain_text("SGD, momentum 0.5")
