/**
 * A sweep, live: progress per method, the best objective so far, each field's importance, the
 * trials across the search space and in a sortable table linked to their runs, and, once
 * the best configurations have run on new seeds, the table of results by method (the same
 * table as the compare and experiment pages).
 */

import * as api from "./api.js";
import { byId, h, poll, showAlert } from "./dom.js";
import * as fmt from "./format.js";
import { renderResults } from "./results.js";
import { BestChart, drawImportance, drawTrials } from "./sweep-charts.js";
import { SWEEP_ACTIVE, sweepBadge, workBar } from "./sweep-format.js";

const POLL_MS = 2000;
const sweepId = Number(byId("sweep-page").dataset.sweepId);
const alertBox = byId("sweep-alert");
const methodSelect = byId("trials-of");
let sweep = null;
let trials = [];
let catalog = null;
let bestChart = null;
let importance = {};
const sorting = { column: "order", descending: false };
/** What each part was last drawn from: a poll that changes none of it redraws nothing. */
const drawn = {};

function redraw(part, signature, render) {
  if (drawn[part] === signature) return;
  drawn[part] = signature;
  render();
}

function describeObjective(objective) {
  if (objective.kind !== "weighted") return `validation ${objective.kind} head`;
  return Object.entries(objective.weights).map(([head, w]) => `${w} × ${head}`).join(" + ");
}

function showHeader() {
  byId("sweep-name").textContent = sweep.name;
  document.title = `${sweep.name} · MILES`;
  byId("sweep-status").replaceWith(Object.assign(sweepBadge(sweep), { id: "sweep-status" }));
  byId("crumb-experiment").replaceChildren(...(sweep.experiment
    ? [" / ", h("a", { href: api.url(`/experiments/${sweep.experiment_id}`) }, sweep.experiment)] : []));
  const plan = sweep.plan;
  byId("sweep-subtitle").textContent = [
    `#${sweep.id}`, plan.methods.join(", "), `${plan.config.dataset}: ${fmt.modalities(plan.config.modalities)}`,
    `${plan.sampler} sampler, ${plan.parallelism} at a time`, `objective: ${describeObjective(plan.objective)}`,
    plan.pruner ? `${plan.pruner.kind.replace("_", " ")} pruner` : null, `${plan.seeds_for_best} seeds of each best`,
  ].filter(Boolean).join(" · ");
  const cancel = byId("cancel");
  cancel.hidden = !SWEEP_ACTIVE.has(sweep.status);
  byId("method-progress").replaceChildren(workBar(sweep), ...Object.entries(sweep.progress).map(([method, p]) => h("span", {},
    h("strong", {}, method), ` ${p.trials}/${p.budget} trials`,
    h("span", { class: "muted" }, ` · ${p.complete} finished, ${p.pruned} pruned, ${p.failed} failed, ${p.running} running`
      + (sweep.plan.seeds_for_best ? ` · reruns ${p.reruns_done}/${sweep.plan.seeds_for_best}` : "")))));
  if (sweep.status === "failed") showAlert(alertBox, `The sweep failed: ${sweep.error ?? "no reason was recorded"}`);
}

// -- the trials table ----------------------------------------------------------------------------

const STATE_TONES = { running: "running", complete: "succeeded", pruned: "pruned", failed: "failed" };

function paramPaths() {
  return [...new Set(sweep.plan.methods.flatMap((method) => Object.keys(sweep.plan.spaces[method])))];
}

/** Each column: [title, sort key of a trial, cell]. */
function columns() {
  const fixed = [
    ["Method", (t) => t.method, (t) => t.method],
    ["Trial", (t) => [t.role, t.number, t.seed], (t) => (t.role === "trial" ? `#${t.number}` : `best #${t.number}, seed ${t.seed}`)],
    ["State", (t) => t.state, (t) => h("span", { class: `badge status-${STATE_TONES[t.state]}`, title: t.error ?? null }, t.state)],
    ["Objective", (t) => t.value ?? -Infinity, (t) => fmt.metric(t.value, 4), "num"],
  ];
  const params = paramPaths().map((path) => [path, (t) => t.params[path] ?? null, (t) => (path in t.params ? value(t.params[path]) : fmt.DASH), "num"]);
  const run = [
    ["Run", (t) => t.run_id ?? 0, (t) => (t.run_id ? h("a", { href: api.url(`/runs/${t.run_id}`) }, `#${t.run_id}`) : t.error ?? fmt.DASH)],
    ["Epochs", (t) => t.epoch ?? 0, (t) => String(t.epoch ?? fmt.DASH), "num"],
  ];
  return [...fixed, ...params, ...run];
}

function value(v) {
  return typeof v === "number" ? fmt.number(v) : String(v);
}

function compare(a, b) {
  const [x, y] = [JSON.stringify(a), JSON.stringify(b)];
  if (typeof a === "number" && typeof b === "number") return a - b;
  return x < y ? -1 : x > y ? 1 : 0;
}

function showTrials() {
  const table = byId("trials-table");
  const cols = columns();
  const head = table.tHead.rows[0];
  head.replaceChildren(...cols.map(([title, , , cls]) => {
    const key = sorting.column !== title ? "none" : sorting.descending ? "descending" : "ascending";
    const button = h("button", { type: "button", class: "sort" }, title);
    button.addEventListener("click", () => {
      sorting.descending = sorting.column === title ? !sorting.descending : title === "Objective";
      sorting.column = title;
      drawn.trials = null;
      showTrials();
    });
    return h("th", { scope: "col", class: cls ?? null, "aria-sort": key }, button);
  }));
  const column = cols.find(([title]) => title === sorting.column);
  const rows = trials.map((trial, order) => ({ trial, order }));
  if (column) rows.sort((a, b) => compare(column[1](a.trial), column[1](b.trial)) * (sorting.descending ? -1 : 1) || a.order - b.order);
  const best = new Map(Object.entries(sweep.best ?? {}).map(([method, b]) => [method, b.number]));
  table.tBodies[0].replaceChildren(...rows.map(({ trial }) => {
    const isBest = trial.role === "trial" && best.get(trial.method) === trial.number;
    return h("tr", { class: isBest ? "best-trial" : null, title: isBest ? "the best trial of its method" : null },
      ...cols.map(([, , cell, cls], index) => h(index === 0 ? "th" : "td", { class: cls ?? null, scope: index === 0 ? "row" : null }, cell(trial))));
  }));
}

// -- the best of each method ---------------------------------------------------------------------

async function showBest() {
  const best = Object.entries(sweep.best ?? {});
  byId("best-configs").replaceChildren(...(best.length ? [h("ul", { class: "downloads" }, best.map(([method, b]) => h("li", {},
    h("strong", {}, method), ` trial #${b.number}, objective ${fmt.metric(b.value, 4)}: `,
    h("span", { class: "muted" }, Object.entries(b.params).map(([path, v]) => `${path} ${value(v)}`).join(" · ")))))] : []));
  const ids = trials.filter((t) => t.role === "best" && t.run_id).map((t) => t.run_id);
  if (!ids.length) return;
  const page = await api.get("/runs", { id: ids, limit: 500 });
  renderResults(byId("results"), page.items, catalog);
}

// -- refreshing ----------------------------------------------------------------------------------

async function loadImportance() {
  importance = (await api.get(`/sweeps/${sweepId}/importance`)).importance;
}

function showMethod() {
  const method = methodSelect.value;
  redraw("importance", JSON.stringify([method, importance[method]]), () => drawImportance(byId("chart-importance"), importance[method]));
  const ofMethod = trials.filter((t) => t.method === method);
  redraw("parcoords", JSON.stringify([method, ofMethod.map((t) => [t.number, t.state, t.value])]),
    () => drawTrials(byId("chart-parcoords"), ofMethod, sweep.plan.spaces[method]));
}

async function refresh() {
  const [fresh, list] = await Promise.all([api.get(`/sweeps/${sweepId}`), api.get(`/sweeps/${sweepId}/trials`)]);
  sweep = fresh;
  trials = list.items;
  const finished = trials.filter((t) => t.state === "complete").length;
  if (drawn.finished !== finished) {
    drawn.finished = finished;
    await loadImportance();
  }
  showHeader();
  bestChart.update(trials);
  showMethod();
  redraw("trials", JSON.stringify([trials, sweep.best]), showTrials);
  redraw("best", JSON.stringify([sweep.best, trials.filter((t) => t.role === "best").map((t) => [t.run_id, t.state])]), () => {
    showBest().catch((error) => showAlert(alertBox, `The reruns of the best cannot be loaded: ${error.message}`));
  });
  byId("sweep-state").textContent = SWEEP_ACTIVE.has(sweep.status) ? "Live" : "";
}

async function start() {
  try {
    sweep = await api.get(`/sweeps/${sweepId}`);
  } catch (error) {
    showAlert(alertBox, error.status === 404 ? `There is no sweep ${sweepId}.` : `The sweep cannot be loaded: ${error.message}`);
    for (const node of document.querySelectorAll("#sweep-page section, #sweep-page .actions")) node.hidden = true;
    return;
  }
  catalog = await api.catalog().catch(() => null);
  methodSelect.replaceChildren(...sweep.plan.methods.map((m) => h("option", { value: m }, m)));
  methodSelect.addEventListener("change", showMethod);
  bestChart = new BestChart(byId("chart-best"), sweep.plan.methods);
  byId("cancel").addEventListener("click", async () => {
    byId("cancel").disabled = true;
    try {
      sweep = await api.post(`/sweeps/${sweepId}/cancel`);
      showHeader();
    } catch (error) {
      showAlert(alertBox, `Could not cancel: ${error.message}`);
    } finally {
      byId("cancel").disabled = false;
    }
  });
  await refresh();
  const retrying = (error) => {
    byId("sweep-state").textContent = `Could not refresh (${error.message}); trying again.`;
  };
  // One more refresh after the sweep ends: its last trials and reruns.
  let active = true;
  poll(() => refresh().catch(retrying).finally(() => { active = SWEEP_ACTIVE.has(sweep.status); }), POLL_MS, () => active).poke();
}

start().catch((error) => showAlert(alertBox, `The page could not load: ${error.message}`));
