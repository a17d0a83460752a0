"""Comparing runs in Chromium: chosen in the runs table, grouped by method with mean ± std over seeds."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Route, expect

from tests.services import MilesStack, tiny_config, wait_until
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
    page.wait_for_function("() => document.getElementById('chart-gap').data?.length === 2")
    page.wait_for_function("() => document.getElementById('chart-metric').data?.length === 2")
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


def test_a_late_answer_for_the_previous_metric_is_dropped_and_ended_runs_are_read_once(
    page: Page, dashboard: MilesStack, finished_runs: FinishedRuns
):
    """The page polls while a run is active; an answer for the metric shown before is not drawn on the new one."""
    ended = finished_runs.joint
    with dashboard.api as api:
        logged = api.post("/runs", json={"name": "logged for compare", "execute": False,
                                         "config": tiny_config(epochs=5)}).raise_for_status().json()
        points = [{"key": key, "step": step, "value": value}
                  for step in (1, 2, 3) for key, value in (("metric/val/fused", 0.25), ("loss/train", 5.0))]
        api.post(f"/runs/{logged['id']}/metrics", json={"points": points}).raise_for_status()

        held: list[Route] = []
        asked: list[str] = []

        def hold_later_fused(route: Route) -> None:
            asked.append(route.request.url)
            fused = [url for url in asked if "fused" in url]
            if "fused" in route.request.url and len(fused) > 1:
                held.append(route)  # the poll's answer for the metric shown first, held until the metric changed
            else:
                route.continue_()

        page.route(f"**/api/v1/runs/{logged['id']}/metrics?*", hold_later_fused)
        ended_reads: list[str] = []
        page.on("request", lambda r: ended_reads.append(r.url) if f"/runs/{ended['id']}/metrics?" in r.url else None)
        page.goto(f"/compare?ids={ended['id']},{logged['id']}")
        page.wait_for_function("() => (document.getElementById('chart-metric').data || []).length === 2")
        wait_until(lambda: page.wait_for_timeout(100) or held, 15, "the poll asking for the first metric again")

        page.select_option("#metric-key", "loss/train")
        trace = f"(document.getElementById('chart-metric').data || []).find((t) => t.name.startsWith('#{logged['id']} '))"
        page.wait_for_function(f"() => {trace}?.y.length === 3 && {trace}.y.every((y) => y === 5)")
        held[0].continue_()
        page.wait_for_timeout(1000)
        assert page.evaluate(f"() => {trace}.y") == [5, 5, 5], "the late answer for metric/val/fused was drawn"
        expect(page.locator("#chart-metric")).to_have_attribute("data-state", "drawn")
        # An ended run is read once: its first series came with the page, and it is not asked for them again.
        assert not [url for url in ended_reads if "fused" in url], f"an ended run is read once: {ended_reads}"

        # A poll that finds nothing new leaves the chips, the tables and the metric's options as they are.
        drawn = "['#run-chips li', '#results table', '#per-run table', '#metric-key option'].map((s) => document.querySelector(s))"
        page.evaluate(f"() => {{ for (const node of {drawn}) node.dataset.mark = 'kept'; }}")
        with page.expect_response(lambda response: "/api/v1/runs?" in response.url, timeout=10_000):
            pass
        page.wait_for_timeout(500)
        assert page.evaluate(f"() => {drawn}.map((node) => node.dataset.mark)") == ["kept"] * 4
        api.patch(f"/runs/{logged['id']}", json={"status": "succeeded"}).raise_for_status()


def test_the_first_charts_are_drawn_from_the_page_itself_with_the_api_unreachable(page: Page, dashboard: MilesStack):
    """The page holds the API's first answers (the runs, their results, each run's series): it draws its
    first charts with every request for them refused."""
    fused = {}
    with dashboard.api as api:
        for name, gap in (("embedded wide gap", 0.4), ("embedded narrow gap", 0.1)):
            run = api.post("/runs", json={"name": name, "execute": False}).raise_for_status().json()
            fused[run["id"]] = [round(0.5 + step / 10 - gap, 2) for step in (1, 2, 3)]
            api.post(f"/runs/{run['id']}/metrics", json={"points": [
                {"key": key, "step": step, "value": value} for step, value in zip((1, 2, 3), fused[run["id"]], strict=True)
                for key, value in (("metric/val/fused", value), ("util/delta", gap))
            ]}).raise_for_status()
            api.patch(f"/runs/{run['id']}", json={"status": "succeeded"}).raise_for_status()  # ended: no polling
    refused: list[str] = []

    def refuse(route: Route) -> None:
        refused.append(route.request.url)
        route.abort()

    for pattern in ("**/api/v1/runs/*/metrics?*", "**/api/v1/runs?*", "**/api/v1/results?*"):
        page.route(pattern, refuse)
    first, second = fused
    page.goto(f"/compare?ids={first},{second}")
    traces = "(id) => (document.getElementById(id).data || []).map((t) => [t.name.split(' ')[0], t.x, t.y])"
    page.wait_for_function(f"() => ({traces})('chart-metric').length === 2 && ({traces})('chart-gap').length === 2")
    assert page.evaluate(f"() => ({traces})('chart-metric')") == [[f"#{i}", [1, 2, 3], fused[i]] for i in fused]
    assert page.evaluate(f"() => ({traces})('chart-gap')") == [[f"#{first}", [1, 2, 3], [0.4] * 3], [f"#{second}", [1, 2, 3], [0.1] * 3]]
    expect(page.locator("#run-chips li")).to_have_count(2)
    expect(page.locator("#compare-alert")).to_be_hidden()
    page.wait_for_timeout(500)
    assert refused == [], "the first look asked the API"


def test_a_modality_pair_is_one_group_whatever_order_its_runs_name_it_in(page: Page, swapped_runs):
    first, second = swapped_runs
    page.goto(f"/compare?ids={first['id']},{second['id']}")
    expect(page.locator(".results-table .group-row")).to_have_count(1)
    row = page.locator(".results-table tbody tr", has=page.get_by_role("rowheader", name="joint", exact=True))
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(1)).to_have_text("2")  # both runs in the one row


def test_the_gap_chart_draws_the_runs_tau_as_a_dashed_line(page: Page, finished_runs: FinishedRuns):
    first, second = finished_runs.miles
    tau = first["config"]["params"]["tau"]
    page.goto(f"/compare?ids={first['id']},{second['id']},{finished_runs.joint['id']}")
    # (a chart has no layout until its first draw lays it out)
    page.wait_for_function("() => (document.getElementById('chart-gap').layout?.shapes || []).length === 1")
    shape = page.evaluate("() => document.getElementById('chart-gap').layout.shapes[0]")
    assert (shape["y0"], shape["y1"], shape["line"]["dash"]) == (tau, tau, "dash")
    expect(page.locator("#chart-gap .annotation-text")).to_have_text(f"τ = {tau:g}")
