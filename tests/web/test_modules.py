"""The pages' pure helpers, imported as the pages import them (the table of results is the server's: trainer.comparison)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.worker]  # the page fixture starts the dashboard and its worker


def run_in_page(page: Page, module: str, body: str):
    """Evaluate ``body`` (which sees the module as ``m``) in a page of the dashboard."""
    page.goto("/login")
    return page.evaluate(f"async () => {{ const m = await import('/static/js/{module}'); {body} }}")


def test_durations_round_to_whole_seconds_before_splitting_into_minutes(page: Page):
    got = run_in_page(page, "format.js", "return [4.25, 59.4, 59.6, 119.6, 125, 3599.6, 3779].map(m.duration);")
    assert got == ["4.3 s", "59 s", "1 min 00 s", "2 min 00 s", "2 min 05 s", "1 h 00 min", "1 h 02 min"]


def test_a_grids_errors_land_on_the_forms_own_fields(page: Page):
    fields = ["grid.config.epochs", "grid.params.miles.tau", "grid.methods.1", "grid.fusions", "grid.seeds",
              "config.params.tau", "grid.cells.joint/film.fusion", "experiment"]
    got = run_in_page(page, "grid-fields.js", f"return {fields}.map((f) => m.formPath(f, ['miles']));")
    assert got == ["config.epochs", "params.miles.tau", "config.method", "config.fusion", "config.seed",
                   "params.miles.tau", "grid.cells.joint/film.fusion", "experiment"]


def test_a_method_of_one_modality_counts_once_per_modality_not_per_fusion(page: Page):
    catalog = "{methods: [{name: 'solo', single_modality: true}, {name: 'miles', single_modality: false}]}"
    got = run_in_page(page, "grid-fields.js", f"return m.runCount({catalog}, ['solo', 'miles'], 3, 2, 2);")
    assert got == (2 + 3) * 2
