/**
 * An experiment: its runs (kept current while some are active) and the table of
 * results by method, as the server computes it, filled in as runs finish (a grid
 * submitted from the form lands here).
 */

import * as api from "./api.js";
import { byId, poll, showAlert } from "./dom.js";
import { ACTIVE } from "./format.js";
import { renderResults } from "./results.js";
import { RunsTable } from "./runs-table.js";

const POLL_MS = 3000;
const experimentId = Number(byId("experiment-page").dataset.experimentId);
const alertBox = byId("experiment-alert");
const table = new RunsTable(byId("runs-table"), { compare: byId("compare"), count: byId("selected-count") });

/** What the table of results was last drawn from: a poll that changes none of it leaves it as it is. */
let resultsDrawn = "";

async function loadRuns() {
  const { items, complete } = await api.listAll("/runs", { experiment: experimentId });
  table.update(items);
  // Only ended runs enter the table: a running one counts by its id and status alone.
  const signature = JSON.stringify(items.map((run) => (ACTIVE.has(run.status)
    ? [run.id, run.status] : [run.id, run.status, run.summary, run.latest])));
  if (signature !== resultsDrawn) {
    renderResults(byId("results"), await api.get("/results", { experiment: experimentId }));
    resultsDrawn = signature;
  }
  byId("list-status").textContent = items.length
    ? `${items.length} runs${complete ? "" : " (the newest; more exist)"}.`
    : "No runs in this experiment yet.";
}

async function start() {
  let experiment;
  try {
    experiment = await api.get(`/experiments/${experimentId}`);
  } catch (error) {
    showAlert(alertBox, error.status === 404 ? `There is no experiment ${experimentId}.` : `The experiment cannot be loaded: ${error.message}`);
    return;
  }
  byId("experiment-name").textContent = experiment.name;
  document.title = `${experiment.name} · MILES`;
  byId("experiment-description").textContent = experiment.description || `Created ${new Date(experiment.created_at).toLocaleDateString()}.`;
  byId("new-in-experiment").href = api.url(`/runs/new?experiment=${encodeURIComponent(experiment.name)}`);
  await loadRuns();
  const retrying = (error) => {
    byId("list-status").textContent = `Could not refresh (${error.message}); trying again.`;
  };
  poll(() => loadRuns().catch(retrying), POLL_MS, () => table.runs.some((run) => ACTIVE.has(run.status))).poke();
}

start().catch((error) => showAlert(alertBox, `The page could not load: ${error.message}`));
