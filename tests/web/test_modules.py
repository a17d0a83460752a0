"""The pages' pure helpers, imported as the pages import them: durations, and how results are grouped and labelled."""

from __future__ import annotations

import json

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


def run(run_id: int, method: str, val: dict[str, float], test: dict[str, float], **config: object) -> dict:
    summary = {"metric/test/fused": 0.9, **{f"metric/val/{m}": v for m, v in val.items()},
               **{f"metric/test/{m}": v for m, v in test.items()}}
    return {"id": run_id, "method": method, "fusion": "concat", "status": "succeeded", "modalities": ["audio", "video"],
            "summary": summary, "config": {"method": method, "fusion": "concat", "seed": run_id, **config}}


def test_the_dominant_modality_is_chosen_on_validation_never_on_test(page: Page):
    runs = [run(1, "joint", {"audio": 0.8, "video": 0.6}, {"audio": 0.5, "video": 0.7}),
            run(2, "joint", {"audio": 0.7, "video": 0.65}, {"audio": 0.5, "video": 0.7}),
            run(3, "miles", {"audio": 0.1, "video": 0.9}, {"audio": 0.1, "video": 0.9})]
    roles = run_in_page(page, "results.js", f"return m.dominance({json.dumps(runs)});")
    assert roles == {"dominant": "audio", "weak": "video", "basis": "joint"}


def test_rows_of_one_method_name_the_settings_they_differ_in(page: Page):
    runs = [run(1, "miles", {}, {}, params={"tau": 0.1}, lr=0.01), run(2, "miles", {}, {}, params={"tau": 0.1}, lr=0.01),
            run(3, "miles", {}, {}, params={"tau": 0.3}, lr=0.01), run(4, "miles", {}, {}, lr=0.01),
            run(5, "joint", {}, {}, lr=0.01), run(6, "joint", {}, {}, lr=0.02)]
    rows = run_in_page(page, "results.js", f"return m.rows({json.dumps(runs)}, {{dominant: 'audio', weak: 'video'}})"
                                           ".map((r) => [r.method, r.label, r.runs.length]);")
    assert rows == [["joint", "lr 0.01", 1], ["joint", "lr 0.02", 1],
                    ["miles", "tau 0.1", 2], ["miles", "tau 0.3", 1], ["miles", "tau default", 1]]
