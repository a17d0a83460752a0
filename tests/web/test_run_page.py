"""The run page in Chromium: a run submitted from the form is watched live until it ends; a run is cancelled."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.services import MilesStack, tiny_config, wait_until
from tests.web.conftest import FinishedRuns, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow]

EPOCHS = 12
# Three classes the weak modality barely separates: the strong one dominates and MILES acts.
SIGNALS = '{"strong": 1.0, "weak": 0.3}'


def points(page: Page, chart: str, trace: str) -> int:
    """How many points the trace named ``trace`` of chart ``#chart-<chart>`` draws (0 before it exists)."""
    return page.evaluate(
        """([chart, trace]) => {
            const found = (document.getElementById(`chart-${chart}`).data || []).find((t) => t.name === trace);
            return found ? found.x.length : 0;
        }""",
        [chart, trace],
    )


def test_a_run_submitted_from_the_form_draws_its_charts_while_it_trains_until_it_succeeds(page: Page):
    page.goto("/runs/new")
    page.select_option("#dataset", "synthetic")
    page.get_by_text("Dataset options").click()
    page.get_by_label("Signals").fill(SIGNALS)
    # Large enough that the run outlives a few 2-second streams even on a fast, idle machine.
    page.get_by_label("Train size").fill("8000")
    page.get_by_label("Classes").fill("6")
    expect(page.get_by_label("MILES", exact=True)).to_be_checked()  # the default method, alone
    page.get_by_label("Epochs").fill(str(EPOCHS))
    page.get_by_label("Device").fill("cpu")
    page.get_by_label("Name").fill("watched from the form")
    streams: list[str] = []
    page.on("request", lambda request: streams.append(request.url) if "/stream" in request.url else None)
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url("**/runs/*")

    samples: list[tuple[str, int]] = []  # (status shown, epochs drawn on the balance chart)
    mid_run_captured = False
    deadline = time.monotonic() + 300  # a shared machine trains it several times slower than an idle one
    while time.monotonic() < deadline:
        status = page.locator("#run-status").inner_text().strip()
        drawn = points(page, "balance", "gap δ")
        samples.append((status, drawn))
        if not mid_run_captured and status == "Running" and drawn >= EPOCHS // 2:
            screenshot(page, "run-page-mid-run")
            mid_run_captured = True
        if status in ("Succeeded", "Failed", "Cancelled"):
            break
        page.wait_for_timeout(100)

    assert samples[-1][0] == "Succeeded", samples[-5:]
    counts = [drawn for _, drawn in samples]
    assert counts == sorted(counts), "the chart never loses points"
    partial = {drawn for status, drawn in samples if status == "Running" and 0 < drawn < EPOCHS}
    assert len(partial) >= 2, f"the chart grew while the run trained (saw {sorted(partial)})"
    expect(page.locator("#run-status")).to_have_text("Succeeded")
    page.wait_for_function(f"() => document.getElementById('chart-balance').data.find(t => t.name === 'gap δ').x.length === {EPOCHS}")
    for chart, trace in (("lr", "strong"), ("metrics", "fused"), ("losses", "train")):
        assert points(page, chart, trace) == EPOCHS, chart
    assert len(streams) >= 2, "the stream outlived its lifetime: the page reconnected and missed no epoch"
    assert points(page, "balance", "MILES slowed strong") >= 1, "MILES acted and its actions are marked"
    assert points(page, "metrics", "fused (test)") >= 1, "the test metric appears once the run has ended"
    expect(page.locator("#summary table")).to_contain_text("weak")
    expect(page.locator("#downloads")).to_contain_text("Best checkpoint")
    expect(page.locator("#events")).to_contain_text("MILES slowed strong")
    expect(page.locator("#cancel")).to_be_hidden()
    screenshot(page, "run-page-finished")


def test_a_running_run_is_cancelled_from_its_page_after_confirming(page: Page, dashboard: MilesStack):
    run = dashboard.submit(tiny_config(epochs=1000), name="to be cancelled")
    page.goto(f"/runs/{run['id']}")
    expect(page.locator("#run-status")).to_have_text("Running", timeout=90_000)
    wait_until(lambda: points(page, "losses", "train") > 0, 30, "a first epoch on the page")
    page.get_by_role("button", name="Cancel").click()
    dialog = page.get_by_role("dialog", name="Cancel this run?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("It stops after the current batch")
    dialog.get_by_role("button", name="Keep it").click()
    expect(dialog).to_be_hidden()
    page.wait_for_timeout(500)
    assert dashboard.run(run["id"])["status"] == "running", "keeping it cancelled nothing"
    page.get_by_role("button", name="Cancel").click()
    dialog.get_by_role("button", name="Cancel run").click()
    expect(page.locator("#run-status")).to_have_text("Cancelled", timeout=15_000)
    expect(page.locator("#cancel")).to_be_hidden()
    assert dashboard.run(run["id"])["status"] == "cancelled"
    screenshot(page, "run-page-cancelled")


def test_a_run_is_deleted_from_its_page_after_confirming(page: Page, dashboard: MilesStack):
    with dashboard.api as api:
        run = api.post("/runs", json={"name": "logged, then deleted", "execute": False}).raise_for_status().json()
    page.goto(f"/runs/{run['id']}")
    expect(page.locator("#run-name")).to_have_text("logged, then deleted")
    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete this run?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Keep it").click()
    expect(dialog).to_be_hidden()
    assert dashboard.run(run["id"])["name"] == "logged, then deleted"
    page.get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete run").click()
    page.wait_for_url(re.compile(r"/$"))
    with dashboard.api as api:
        assert api.get(f"/runs/{run['id']}").status_code == 404


def test_the_charts_follow_a_switch_between_light_and_dark(page: Page, finished_runs: FinishedRuns):
    page.emulate_media(color_scheme="light")
    page.goto(f"/runs/{finished_runs.miles[0]['id']}")
    page.wait_for_function("() => (document.getElementById('chart-balance').data || []).length > 0")
    font = "() => document.getElementById('chart-balance')._fullLayout.font.color"
    light = page.evaluate(font)
    page.emulate_media(color_scheme="dark")
    page.wait_for_function(f"() => ({font})() !== {light!r}")
    dark_text = page.evaluate("() => getComputedStyle(document.documentElement).getPropertyValue('--text').trim()")
    assert page.evaluate(font) == dark_text


# Every call to Plotly's drawing functions, by chart: wrapped as the bundle assigns `window.Plotly`.
COUNT_PLOTLY_CALLS = """
window.__plotlyCalls = [];
Object.defineProperty(window, "Plotly", {
  configurable: true,
  set(plotly) {
    for (const name of ["newPlot", "react", "addTraces", "extendTraces", "restyle", "relayout", "deleteTraces"]) {
      const original = plotly[name];
      plotly[name] = function (node, ...rest) {
        window.__plotlyCalls.push([node.id, name, name === "newPlot" ? rest[0].length : null]);
        return original.call(this, node, ...rest);
      };
    }
    Object.defineProperty(window, "Plotly", { value: plotly, writable: true, configurable: true });
  },
});
"""


def test_a_finished_runs_charts_are_each_laid_out_once_with_all_their_points(page: Page, finished_runs: FinishedRuns):
    """The points are in the page: each chart is one newPlot with every series, tau line and tick change
    in it, not an empty plot laid out again for the traces and again for each change."""
    page.add_init_script(COUNT_PLOTLY_CALLS)
    page.goto(f"/runs/{finished_runs.miles[0]['id']}")
    charts = page.eval_on_selector_all(".chart[id^='chart-']", "nodes => nodes.map((node) => node.id)")
    page.wait_for_function("ids => ids.every((id) => document.getElementById(id)._fullLayout)", arg=charts)
    page.wait_for_load_state("networkidle")
    calls = page.evaluate("window.__plotlyCalls")
    by_chart = {chart: [(name, traces) for node, name, traces in calls if node == chart] for chart in charts}
    drawn = page.evaluate("ids => Object.fromEntries(ids.map((id) => [id, document.getElementById(id).data.length]))", charts)
    assert drawn["chart-balance"] > 0 and drawn["chart-lr"] > 0 and drawn["chart-metrics"] > 0, drawn
    assert by_chart == {chart: [("newPlot", drawn[chart])] for chart in charts}, calls
    # The changes asked for before the layout are in it: the tau line, and MILES's two rates labelled.
    assert page.evaluate("document.getElementById('chart-balance').layout.shapes.length") == 1
    assert page.evaluate("document.getElementById('chart-lr')._fullLayout.yaxis.tickmode") == "array"


def test_a_logged_runs_progress_follows_its_metrics_across_reconnects(page: Page, dashboard: MilesStack):
    """A logged run's progress is the last step posted to it, live, after a reconnect and once it ends."""
    with dashboard.api as api:
        run = api.post("/runs", json={"name": "logged with progress", "execute": False,
                                      "config": tiny_config(epochs=5)}).raise_for_status().json()

        def log(step: int) -> None:
            points = [{"key": "loss/train", "step": step, "value": 1 / step}]
            api.post(f"/runs/{run['id']}/metrics", json={"points": points}).raise_for_status()

        for step in (1, 2):
            log(step)
        page.goto(f"/runs/{run['id']}")
        expect(page.locator("#progress-strip .progress-text")).to_have_text("2/5")
        for step in (3, 4):
            log(step)
        expect(page.locator("#progress-strip .progress-text")).to_have_text("4/5")
        # Past the stream's lifetime the page reconnects; the first message, the status, keeps the count.
        with page.expect_request(lambda request: "/stream" in request.url, timeout=10_000):
            pass
        page.wait_for_timeout(1000)
        expect(page.locator("#progress-strip .progress-text")).to_have_text("4/5")
        api.patch(f"/runs/{run['id']}", json={"status": "succeeded"}).raise_for_status()
        expect(page.locator("#run-status")).to_have_text("Succeeded")
        expect(page.locator("#progress-strip .progress-text")).to_have_text("4/5")


def test_a_modality_keeps_its_colour_whatever_order_a_run_names_it_in(page: Page, swapped_runs):
    colours = []
    for run in swapped_runs:
        page.goto(f"/runs/{run['id']}")
        page.wait_for_function("() => (document.getElementById('chart-balance').data || []).length >= 3")
        colours.append(page.evaluate("""() => Object.fromEntries(document.getElementById('chart-balance').data
            .filter((t) => t.name.startsWith('u ')).map((t) => [t.name, t.line.color]))"""))
    assert set(colours[0]) == {"u strong", "u weak"}
    assert colours[0] == colours[1]
    assert colours[0]["u strong"] != colours[0]["u weak"]


# -- what a chart says when it has nothing to draw, ticks, the event log ------------------------------


def logged_run(dashboard: MilesStack, name: str, points: list[dict] = (), events: list[dict] = ()) -> dict:
    """A run logged from outside, holding ``points`` and ``events``, as a notebook's own loop leaves one."""
    with dashboard.api as api:
        run = api.post("/runs", json={"name": name, "execute": False}).raise_for_status().json()
        if points:
            api.post(f"/runs/{run['id']}/metrics", json={"points": list(points)}).raise_for_status()
        if events:
            api.post(f"/runs/{run['id']}/events", json={"events": list(events)}).raise_for_status()
    return run


def wait_drawn(page: Page, *charts: str, timeout: float = 15_000) -> None:
    page.wait_for_function(
        "(charts) => charts.every((c) => document.getElementById(`chart-${c}`).dataset.state === 'drawn')",
        arg=list(charts), timeout=timeout,
    )


def empty_text(page: Page, chart: str) -> str:
    """The sentence an empty chart shows (its ::after content), or "" when it is drawn."""
    return page.evaluate(
        """(id) => { const node = document.getElementById(id);
            return node.dataset.state === "empty" ? getComputedStyle(node, "::after").content.slice(1, -1) : ""; }""",
        f"chart-{chart}",
    )


def test_a_queued_run_says_it_waits_and_once_cancelled_that_it_ended_before_its_first_epoch(page: Page, dashboard: MilesStack):
    run = dashboard.submit(tiny_config(device="cuda"), name="waits for a GPU")  # the test worker serves the cpu queue only
    page.goto(f"/runs/{run['id']}")
    expect(page.locator("#run-status")).to_have_text("Queued")
    wait_until(lambda: empty_text(page, "balance"), 15, "the balance chart's empty state")
    assert empty_text(page, "balance") == (
        "No utilization yet: the run is waiting for a worker, and it is measured after each epoch.")
    page.get_by_role("button", name="Cancel").click()
    page.get_by_role("dialog", name="Cancel this run?").get_by_role("button", name="Cancel run").click()
    expect(page.locator("#run-status")).to_have_text("Cancelled")
    assert empty_text(page, "balance") == "No utilization: the run was cancelled before its first epoch."
    assert empty_text(page, "lr") == "No learning rates: the run was cancelled before its first epoch."


ONE_LOSS = [{"key": "loss/train", "step": 1, "value": 0.5}]


def test_a_logged_run_without_utilization_says_its_loop_logs_it(page: Page, dashboard: MilesStack):
    run = logged_run(dashboard, "my own loop", ONE_LOSS)
    page.goto(f"/runs/{run['id']}")
    wait_drawn(page, "losses")
    assert empty_text(page, "balance") == "No utilization logged: a loop of your own logs util/<modality> and util/delta."
    assert empty_text(page, "losses") == ""


def test_an_empty_chart_shows_its_sentence_without_plotlys_default_axes(page: Page, dashboard: MilesStack):
    run = logged_run(dashboard, "losses only", ONE_LOSS)
    page.goto(f"/runs/{run['id']}")
    wait_drawn(page, "losses")
    expect(page.locator("#chart-balance .xtick").first).to_be_hidden()
    expect(page.locator("#chart-balance .ytick").first).to_be_hidden()
    expect(page.locator("#chart-losses .ytick").first).to_be_visible()


UPRIGHT = """() => [...document.querySelectorAll('.xtick text, .ytick text')]
    .filter((t) => /rotate\\(-?90\\b/.test(t.getAttribute('transform') || '')).map((t) => t.textContent)"""


@pytest.mark.parametrize("width", [1440, 390])
def test_no_tick_label_stands_upright_on_a_run_of_forty_epochs(page: Page, dashboard: MilesStack, width: int):
    keys = (("loss/train", 0.5), ("metric/val/fused", 0.9), ("util/delta", 0.1), ("util/a", 0.2), ("lr/a", 1e-3))
    run = logged_run(dashboard, "forty epochs", [
        {"key": key, "step": step, "value": value} for step in range(1, 41) for key, value in keys])
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"/runs/{run['id']}")
    wait_drawn(page, "balance", "lr", "metrics", "losses")
    page.wait_for_timeout(300)
    assert page.evaluate(UPRIGHT) == []


def test_a_logged_run_whose_steps_reach_the_hundred_thousands_draws_its_charts(page: Page, dashboard: MilesStack):
    run = logged_run(dashboard, "logged per batch", [
        {"key": "loss/train", "step": step, "value": 1 / (step + 1)} for step in range(0, 200_000, 5_000)])
    page.goto(f"/runs/{run['id']}")
    wait_drawn(page, "losses", timeout=30_000)
    assert 2 <= page.locator("#chart-losses .xtick").count() <= 20, "Plotly's own ticks, not one per step"


def test_an_events_kind_label_never_runs_into_its_message(page: Page, dashboard: MilesStack):
    kinds = ["run.started", "metrics.not_finite", "checkpoint.copied_to_shared_storage", "note"]
    run = logged_run(dashboard, "many kinds of events", events=[
        {"kind": kind, "message": f"{kind} happened, and this message says at length what it was", "step": 1}
        for kind in kinds])
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"/runs/{run['id']}")
        expect(page.locator("#events li")).to_have_count(len(kinds))
        # Where the text itself is drawn (a Range), not the element's box, which text can overflow.
        overlaps = page.evaluate("""() => [...document.querySelectorAll('#events li')].map((li) => {
            const text = (selector) => { const range = document.createRange();
                range.selectNodeContents(li.querySelector(selector)); return range.getBoundingClientRect(); };
            const kind = text('.event-kind'), message = text('.event-message');
            return kind.width > 0 && kind.right > message.left + 0.5 ? li.textContent : null; }).filter(Boolean)""")
        assert overlaps == [], f"at {width} px"
