/**
 * Compare runs (`/compare?ids=1,2,3`): the table of results by method, any metric
 * overlaid across the runs, and the utilization gap of each. Refreshed every few
 * seconds while one of the runs is still queued or running. The first look comes
 * with the page (the server embeds what the API would answer it), so the first
 * charts are drawn without a request.
 */

import * as api from "./api.js";
import { byId, h, poll, preloaded, showAlert } from "./dom.js";
import { LINE, LiveChart, plotlyText } from "./charts.js";
import * as fmt from "./format.js";
import { renderPerRun, renderResults } from "./results.js";
import { PALETTE_SIZE, seriesColor, theme } from "./theme.js";

const POLL_MS = 5000;
const MAX_POINTS = 1000;
const DEFAULT_KEY = "metric/val/fused";
const alertBox = byId("compare-alert");
const keySelect = byId("metric-key");
const ids = api.idsParam();
/**
 * The API's answers embedded in the page for these runs (the list of runs, their results, and each run's
 * series of DEFAULT_KEY and the gap, by id), used for the first look only; null: everything is asked for.
 */
let embedded = preloaded("compare-preloaded");
if (JSON.stringify(embedded?.ids) !== JSON.stringify(ids)) embedded = null; // read otherwise than this script reads them
let runs = [];
/** The table of results of these runs, as the server computes it. */
let table = null;

const colorBy = byId("color-by");

/**
 * Runs are coloured by method and fusion (seeds of one setting share a colour), by the device or the
 * host they trained on (`run.machine`), or one colour each.
 */
const GROUPS = {
  method: methodOf,
  device: (run) => run.machine?.device_name ?? "not trained by a worker",
  host: (run) => run.machine?.host ?? "not trained by a worker",
};

function colorIndex(runId) {
  const index = runs.findIndex((run) => run.id === runId);
  const group = GROUPS[colorBy.value];
  if (!group) return index;
  const groups = [...new Set(runs.map(group))];
  return groups.indexOf(group(runs[index]));
}

function methodOf(run) {
  return `${run.method ?? "logged"} · ${run.fusion ?? ""}`;
}

/** A run's line on both charts; past the palette, runs also differ by dash. */
function runStyle(id) {
  const match = /^run\/(\d+)$/.exec(id);
  const runId = match ? Number(match[1]) : NaN;
  const index = runs.findIndex((run) => run.id === runId);
  if (index < 0) return null;
  const run = runs[index];
  const label = plotlyText(`#${run.id} ${run.name}`);
  return {
    ...LINE, name: label, line: { width: 2, dash: ["solid", "dash", "dot"][Math.floor(index / PALETTE_SIZE) % 3] },
    color: (t) => t.series[colorIndex(runId) % t.series.length], hovertemplate: `${label} %{y:.3f}<extra></extra>`,
  };
}

const metricChart = new LiveChart(byId("chart-metric"), { style: runStyle, layout: { yaxis: { title: { text: DEFAULT_KEY } } } });
/** The thresholds tau of the compared runs (of MILES and any method with one), each a dashed line on the gap chart. */
let taus = [];
const tauColors = (t) => Object.fromEntries(taus.flatMap((_, i) => [[`shapes[${i}].line.color`, t.tau], [`annotations[${i}].font.color`, t.muted]]));
const gapChart = new LiveChart(byId("chart-gap"), {
  style: runStyle, layout: { yaxis: { title: { text: "gap δ" }, rangemode: "tozero" } }, themed: tauColors,
});

function showTaus() {
  const found = [...new Set(runs.map((run) => run.config?.params?.tau).filter(Number.isFinite))].sort((a, b) => a - b);
  if (JSON.stringify(found) === JSON.stringify(taus)) return;
  taus = found;
  const t = theme();
  gapChart.relayout({
    shapes: taus.map((tau) => ({
      type: "line", xref: "paper", x0: 0, x1: 1, yref: "y", y0: tau, y1: tau, line: { dash: "dash", width: 1.5, color: t.tau },
    })),
    annotations: taus.map((tau) => ({
      xref: "paper", x: 1, xanchor: "right", yref: "y", y: tau, yanchor: "bottom", showarrow: false,
      text: `τ = ${fmt.number(tau)}`, font: { size: 11, color: t.muted },
    })),
  });
}

/** Bumped when another metric is chosen: series asked for before then are dropped when they arrive. */
let generation = 0;
/** Runs whose series of the chosen metric are loaded in full: they had ended when they were read. */
const complete = new Set();

/**
 * Load the series of the chosen metric and the gap of the runs still running at the last
 * look (and of those not loaded yet); a run that had ended is read once.
 */
async function loadSeries() {
  const key = keySelect.value || DEFAULT_KEY;
  const asked = generation;
  const answers = await Promise.all(runs.filter((run) => !complete.has(run.id)).map((run) => {
    const ended = !fmt.ACTIVE.has(run.status);
    const first = key === DEFAULT_KEY ? embedded?.metrics[run.id] : undefined;
    const answer = first ?? api.get(`/runs/${run.id}/metrics`, { keys: `${key},util/delta`, max_points: MAX_POINTS });
    return Promise.resolve(answer).then((series) => [run, series, ended]);
  }));
  if (asked !== generation) return; // the metric changed meanwhile: these points belong to the old one
  for (const [run, answer, ended] of answers) {
    for (const [chart, series] of [[metricChart, answer.series[key]], [gapChart, answer.series["util/delta"]]]) {
      series?.steps.forEach((step, i) => chart.set(`run/${run.id}`, step, series.values[i]));
    }
    if (ended) complete.add(run.id);
  }
}

/** What each part of the page shows, as last drawn: a poll that changes nothing redraws nothing. */
const drawn = { chips: "", results: "", keys: "" };

/** Draw `part` with `render` unless `signature` is what it was drawn from last. */
function redraw(part, signature, render) {
  if (drawn[part] === signature) return;
  drawn[part] = signature;
  render();
}

function showRuns() {
  byId("compare-subtitle").textContent = `${runs.length} runs`;
  redraw("chips", JSON.stringify([colorBy.value, runs.map((run) => [run.id, run.name, run.status])]), () => {
    byId("run-chips").replaceChildren(...runs.map(chip));
  });
  redraw("results", JSON.stringify(runs.map((run) => [run.id, run.name, run.status, run.summary, run.latest])), () => {
    renderResults(byId("results"), table);
    renderPerRun(byId("per-run"), runs, table);
  });
  const active = runs.filter((run) => fmt.ACTIVE.has(run.status)).length;
  byId("compare-state").textContent = active ? `${active} still running; refreshing every few seconds.` : "";
}

function chip(run) {
  const others = runs.filter((other) => other.id !== run.id).map((other) => other.id);
  const swatch = h("span", { class: "swatch", "aria-hidden": "true" });
  swatch.style.setProperty("--swatch", seriesColor(colorIndex(run.id)));
  const status = fmt.STATUS_LABELS[run.status] ?? run.status;
  return h("li", { class: "chip" },
    swatch,
    h("a", { href: api.url(`/runs/${run.id}`) }, run.name), h("span", { class: "run-meta" }, ` #${run.id}`),
    h("span", { class: `dot status-${run.status}`, title: status, "aria-hidden": "true" }),
    h("span", { class: "visually-hidden" }, `, ${status}`),
    h("a", { class: "chip-remove", href: api.compareUrl(others), "aria-label": `Remove ${run.name} from the comparison` }, "×"));
}

/** The metrics to choose from; the options are rebuilt only when the set changes (an open list stays open). */
function fillKeys() {
  const keys = new Set([DEFAULT_KEY]);
  for (const run of runs) {
    for (const key of Object.keys(run.latest ?? {})) if (/^(metric|loss|util|lr)\//.test(key)) keys.add(key);
  }
  const sorted = [...keys].sort();
  redraw("keys", JSON.stringify(sorted), () => {
    const chosen = keySelect.value || DEFAULT_KEY;
    keySelect.replaceChildren(...sorted.map((key) => h("option", { value: key }, key)));
    keySelect.value = chosen;
  });
}

async function loadRuns() {
  // Every metric's latest value, not only those the tables show: the chooser of the chart offers them all.
  const [page, results] = embedded ? [embedded.runs, embedded.results] : await Promise.all([
    api.get("/runs", { id: ids, limit: 500, latest: "metric/*,loss/*,util/*,lr/*" }),
    api.get("/results", { id: ids }),
  ]);
  table = results;
  const found = new Map(page.items.map((run) => [run.id, run]));
  runs = ids.filter((id) => found.has(id)).map((id) => found.get(id));
  const missing = ids.filter((id) => !found.has(id));
  showAlert(alertBox, missing.length ? `Not found (deleted?): ${missing.map((id) => `#${id}`).join(", ")}.` : "");
}

/** Show the runs loaded last, and their series. */
async function show() {
  showRuns();
  showTaus();
  fillKeys();
  await loadSeries();
}

async function refresh() {
  await loadRuns();
  await show();
}

async function start() {
  if (!ids.length) {
    showAlert(alertBox, "No runs chosen: select two or more runs in the runs table, then Compare.");
    return;
  }
  await loadRuns();
  const seeded = new Set(runs.map(methodOf)).size < runs.length;
  colorBy.value = seeded ? "method" : "run";
  colorBy.addEventListener("change", () => {
    showRuns();
    for (const chart of [metricChart, gapChart]) chart.repaint(theme());
  });
  await show();
  embedded = null; // drawn: every later look asks the API
  keySelect.addEventListener("change", () => {
    generation += 1;
    complete.clear();
    metricChart.clear();
    metricChart.relayout({ "yaxis.title.text": plotlyText(keySelect.value) });
    loadSeries().catch((error) => showAlert(alertBox, `The series cannot be loaded: ${error.message}`));
  });
  const retrying = (error) => {
    byId("compare-state").textContent = `Could not refresh (${error.message}); trying again.`;
  };
  poll(() => refresh().catch(retrying), POLL_MS, () => runs.some((run) => fmt.ACTIVE.has(run.status))).poke();
}

start().catch((error) => showAlert(alertBox, `The comparison cannot be loaded: ${error.message}`));
