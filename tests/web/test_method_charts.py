"""In Chromium: what a balancing method moves gets a chart of its own on the run page, its events a label, and
the form answers a method and fusion that do not go together next to the fusions."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.services import MilesStack
from tests.web.conftest import Console, screenshot
from tests.web.test_run_page import logged_run, wait_drawn

pytestmark = [pytest.mark.browser, pytest.mark.worker]

EPOCHS = (1, 2, 3)
POINTS = [
    *({"key": "ogm/coef/strong", "step": s, "value": v} for s, v in zip(EPOCHS, (0.31, 0.27, 1.0), strict=True)),
    *({"key": "ogm/coef/weak", "step": s, "value": 1.0} for s in EPOCHS),
    *({"key": f"weight/{head}", "step": s, "value": w} for s in EPOCHS for head, w in (("fused", 0.5), ("strong", 0.2), ("weak", 0.3))),
    *({"key": "frozen/strong", "step": s, "value": float(s >= 2)} for s in EPOCHS),
    *({"key": "loss/train", "step": s, "value": 1 / s} for s in EPOCHS),
]
EVENTS = [
    {"step": 1, "kind": "ogm.modulation", "message": "strong led in 100% of batches; mean gradient coefficients strong 0.310, weak 1.000"},
    {"step": 1, "kind": "gblend.weights", "message": "loss weights before training from 5-epoch trials (1.2 s): fused 0.500, strong 0.200, weak 0.300"},
]


def traces(page: Page, chart: str) -> dict[str, list[float]]:
    return page.evaluate(
        "(id) => Object.fromEntries(document.getElementById(id).data.map((t) => [t.name, [...t.y]]))", chart)


def test_a_runs_method_metrics_get_their_charts_and_its_events_readable_labels(page: Page, dashboard: MilesStack):
    run = logged_run(dashboard, "ogm and gblend metrics", POINTS, EVENTS)
    page.goto(f"/runs/{run['id']}")
    for chart in ("ogm", "weights", "frozen"):
        page.wait_for_selector(f"#chart-{chart}", state="attached")  # added when its first point arrives
    wait_drawn(page, "ogm", "weights", "frozen", "losses")
    assert traces(page, "chart-ogm") == {"strong": [0.31, 0.27, 1.0], "weak": [1.0, 1.0, 1.0]}
    assert traces(page, "chart-weights") == {"fused": [0.5] * 3, "strong": [0.2] * 3, "weak": [0.3] * 3}
    assert traces(page, "chart-frozen") == {"strong": [0.0, 1.0, 1.0]}
    titles = page.locator("figure:has(#chart-ogm, #chart-weights, #chart-frozen) h2")
    expect(titles).to_have_text(["Gradient modulation", "Loss weights", "Frozen modalities"])
    # a modality has one colour on every chart of the page
    colour = "(id) => document.getElementById(id).data.find((t) => t.name === 'strong').line.color"
    assert page.evaluate(colour, "chart-ogm") == page.evaluate(colour, "chart-weights") == page.evaluate(colour, "chart-frozen")
    kinds = page.locator("#events .event-kind")
    expect(kinds).to_have_text(["OGM", "G-Blend"])
    screenshot(page, "run-page-method-charts")


def test_a_run_without_method_metrics_shows_none_of_their_charts(page: Page, dashboard: MilesStack):
    run = logged_run(dashboard, "losses alone", [{"key": "loss/train", "step": 1, "value": 0.5}])
    page.goto(f"/runs/{run['id']}")
    wait_drawn(page, "losses")
    for chart in ("ogm", "weights", "frozen"):
        expect(page.locator(f"#chart-{chart}")).to_have_count(0)


def test_ogm_with_film_fusion_is_answered_next_to_the_fusions_before_anything_runs(page: Page, console: Console):
    console.expect("status of 422")  # the refused request is the point
    page.goto("/runs/new")
    page.get_by_label("MILES", exact=True).uncheck()
    page.get_by_label("OGM (on-the-fly gradient modulation)", exact=True).check()
    page.get_by_label("concat", exact=True).uncheck()
    page.get_by_label("film", exact=True).check()
    page.get_by_role("button", name="Start run").click()
    error = page.locator('.field[data-field="config.fusion"] .error')
    expect(error).to_have_text("method 'ogm' needs each modality's share of the fused logits, which 'film' fusion "
                               "does not define; allowed: concat, sum")
    expect(page).to_have_url(re.compile(r"/runs/new$"))
