"""The new-run form's presets in Chromium: the paper's setting filled in, and a run that trains from one."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.services import MilesStack
from tests.trainer.datasets.releases import write_smnist
from tests.web.conftest import screenshot
from trainer.datasets import smnist
from trainer.datasets.preparation import prepare

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_choosing_a_preset_fills_the_form_with_the_papers_setting(page: Page):
    page.goto("/runs/new")
    page.wait_for_selector("#run-form:not([aria-busy])")
    page.select_option("#preset", "cremad")
    expect(page.locator("#dataset")).to_have_value("cremad")
    expect(page.locator('input[name="config.method"]:checked')).to_have_count(1)
    expect(page.locator('input[name="config.method"][value="miles"]')).to_be_checked()
    expect(page.locator('input[name="config.fusion"]:checked')).to_have_count(1)
    expect(page.get_by_label("Epochs")).to_have_value("200")
    expect(page.get_by_label("Batch size")).to_have_value("64")
    encoders = page.locator('[name="config.model.encoders"]')
    expect(encoders).to_have_value('{"audio":"resnet18","visual":"resnet18"}')
    expect(page.locator("#preset-help")).to_contain_text("Metric: accuracy")
    screenshot(page, "new-run-preset-cremad")

    page.select_option("#dataset", "mfeat")  # another dataset: the preset and its per-modality encoders go
    expect(page.locator("#preset")).to_have_value("")
    expect(encoders).to_have_value("")


def test_a_run_started_from_a_preset_trains_on_its_prepared_folder(page: Page, dashboard: MilesStack, tmp_path):
    settings = smnist.PrepareSettings(train_size=20, val_size=10, test_size=10)
    prepare(smnist.preparation(write_smnist(tmp_path / "release"), settings), dashboard.home / "data" / "smnist-form")
    page.goto("/runs/new")
    page.wait_for_selector("#run-form:not([aria-busy])")
    page.select_option("#preset", "smnist")
    page.get_by_label("Data path").fill("smnist-form")
    page.get_by_label("Epochs").fill("1")
    page.get_by_label("Batch size").fill("8")
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    run = dashboard.wait_for_status(run_id, "succeeded", "failed", timeout=180)
    assert run["status"] == "succeeded", run["error"]
    assert run["config"]["preset"] == "smnist" and run["config"]["model"]["encoders"] == {"image": "resnet10", "audio": "resnet10"}
    assert {"metric/test/image", "metric/test/audio"} <= set(run["summary"])
