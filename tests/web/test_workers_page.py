"""The Workers page, the run page's System card and the warning of a run no worker serves, in Chromium."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.services import MilesStack, tiny_config, wait_until
from tests.web.conftest import screenshot
from tests.web.test_run_page import points

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow]


def test_the_workers_page_shows_the_worker_busy_with_its_run_linked_then_idle(page: Page, dashboard: MilesStack):
    page.goto("/")
    page.get_by_role("link", name="Workers").click()
    row = page.locator("#workers-table tbody tr").first
    expect(row).to_contain_text("cpu0")

    run = dashboard.submit(tiny_config(epochs=1000), name="keeps the worker busy")
    dashboard.wait_for_status(run["id"], "running", timeout=120)
    expect(row).to_have_attribute("data-status", "busy", timeout=30_000)  # the page polls: no reload
    expect(row.get_by_role("link", name="keeps the worker busy")).to_have_attribute("href", f"/runs/{run['id']}")
    wait_until(lambda: page.locator("#workers-table svg.sparkline path").count() > 0, 15, "a sparkline drawn")
    screenshot(page, "workers-busy")

    with dashboard.api as api:
        api.post(f"/runs/{run['id']}/cancel").raise_for_status()
    expect(row).to_have_attribute("data-status", "idle", timeout=30_000)


def test_the_system_card_draws_the_runs_utilization_and_throughput_while_it_trains(page: Page, dashboard: MilesStack):
    run = dashboard.submit(tiny_config(epochs=1000, batch_size=8), name="sampled")
    page.goto(f"/runs/{run['id']}")
    expect(page.locator("#run-status")).to_have_text("Running", timeout=60_000)

    wait_until(lambda: points(page, "system-util", "CPU (of one core)") >= 3, 30, "three CPU samples drawn live")
    assert points(page, "system-throughput", "throughput") >= 2
    expect(page.locator("#system-facts")).to_contain_text("Memory")
    expect(page.locator("#system-facts")).to_contain_text("samples/s")
    expect(page.locator("#details")).to_contain_text("Trained on")
    screenshot(page, "run-page-system")

    with dashboard.api as api:
        api.post(f"/runs/{run['id']}/cancel").raise_for_status()
    expect(page.locator("#run-status")).to_have_text("Cancelled", timeout=30_000)


def test_a_run_no_worker_serves_is_submitted_with_the_command_that_would_serve_it(page: Page, dashboard: MilesStack):
    page.goto("/runs/new")
    page.select_option("#dataset", "synthetic")
    page.get_by_label("Epochs").fill("2")
    page.get_by_label("Device").fill("cuda")  # the gpu queue: the dashboard has only a CPU worker
    page.get_by_label("Name").fill("waits for a GPU")
    page.get_by_role("button", name="Start run").click()

    warning = page.locator("#form-warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("no live worker consumes the gpu queue")
    expect(warning.locator("code")).to_have_text("miles worker --gpus 0")
    warning.get_by_role("link", name="Open the run").click()
    expect(page.locator("#progress-strip .unserved")).to_contain_text("miles worker --gpus 0", timeout=15_000)
    run_id = int(page.url.rsplit("/", 1)[1])
    page.goto("/")
    expect(page.locator(f"tr[data-run-id='{run_id}'] .unserved")).to_contain_text("gpu", timeout=15_000)
    with dashboard.api as api:
        api.post(f"/runs/{run_id}/cancel").raise_for_status()
