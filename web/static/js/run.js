/**
 * The run page. History first (the run, its metric series, its events), then the
 * live stream from where the history ends; the charts, the log, the progress and
 * the status follow the stream until the run ends.
 */

import * as api from "./api.js";
import { byId, h, preloaded, showAlert } from "./dom.js";
import * as fmt from "./format.js";
import { followRun } from "./live.js";
import { MethodCharts } from "./method-charts.js";
import { RunCharts } from "./run-charts.js";
import { methodParams, progressBar, statusBadge, unservedNote } from "./runs-table.js";
import { isSystem, SystemCard } from "./system-card.js";
import { modalityOrder } from "./theme.js";

const runId = Number(byId("run-page").dataset.runId);
const alertBox = byId("run-alert");
const seenEvents = new Set();
let run = null;
let charts = null;
let methodCharts = null;
let system = null;
let stream = null;
let lastEventId = null;
/** Seconds per epoch (`time/epoch`), by epoch. */
const epochSeconds = new Map();

// -- header, progress, actions -------------------------------------------------------------------

function showHeader() {
  byId("run-name").textContent = run.name;
  document.title = `${run.name} · MILES`;
  const badge = byId("run-status");
  badge.replaceWith(Object.assign(statusBadge(run), { id: "run-status" }));
  const crumb = byId("crumb-experiment");
  crumb.replaceChildren(...(run.experiment
    ? [" / ", h("a", { href: api.url(`/experiments/${run.experiment_id}`) }, run.experiment)]
    : []), ...(run.sweep_id ? [" / ", h("a", { href: api.url(`/sweeps/${run.sweep_id}`) }, `Sweep ${run.sweep_id}`)] : []));
  const parts = [`#${run.id}`];
  if (run.method) parts.push(`${run.method}${methodParams(run) ? ` (${methodParams(run)})` : ""}`);
  if (run.dataset) parts.push(`${run.dataset}: ${fmt.modalities(run.modalities)}`);
  if (run.fusion) parts.push(`${run.fusion} fusion`);
  if (run.seed !== null && run.seed !== undefined) parts.push(`seed ${run.seed}`);
  if (!run.execute) parts.push("logged from outside");
  byId("run-subtitle").replaceChildren(parts.join(" · "), ...run.tags.map((tag) => h("span", { class: "tag" }, tag)));

  const active = fmt.ACTIVE.has(run.status);
  const cancel = byId("cancel");
  cancel.hidden = !active;
  cancel.disabled = run.cancel_requested;
  cancel.textContent = run.cancel_requested ? "Stopping…" : "Cancel";
  byId("clone").hidden = !run.config;
  showEmptyStates();

  const strip = byId("progress-strip");
  strip.hidden = !run.progress.epochs && !run.progress.epoch;
  const waiting = run.status !== "queued" ? ""
    : unservedNote(run) ?? h("span", { class: "muted" }, `waiting for a worker on the ${run.queue ?? "default"} queue`);
  strip.replaceChildren(progressBar(run, true), waiting);
  if (run.status === "failed") {
    showAlert(alertBox, `The run failed: ${run.error ?? "no reason was recorded"}${run.error_detail ? ` (${run.error_detail})` : ""}`);
  }
}

/** What each chart holds, for the sentence it shows while it has nothing to draw. */
const CHART_CONTENT = {
  "chart-balance": { noun: "utilization", verb: "it is measured", keys: "util/<modality> and util/delta" },
  "chart-lr": { noun: "learning rates", verb: "they are recorded", keys: "lr/<group>" },
  "chart-metrics": { noun: "metrics", verb: "they are measured", keys: "metric/val/<head>" },
  "chart-losses": { noun: "losses", verb: "they are measured", keys: "loss/train and loss/val" },
};
const ENDED_EARLY = { cancelled: "was cancelled", failed: "failed", succeeded: "ended" };

/** Each empty chart says what is true of this run: waiting, logged from outside, or ended without epochs. */
function showEmptyStates() {
  for (const [id, { noun, verb, keys }] of Object.entries(CHART_CONTENT)) {
    let text;
    if (!run.execute) text = `No ${noun} logged: a loop of your own logs ${keys}.`;
    else if (run.status === "queued") text = `No ${noun} yet: the run is waiting for a worker, and ${verb} after each epoch.`;
    else if (run.status === "running") text = `No ${noun} yet: ${verb} after the first epoch.`;
    else if (!run.progress.epoch) text = `No ${noun}: the run ${ENDED_EARLY[run.status] ?? "ended"} before its first epoch.`;
    else text = `No ${noun} were recorded for this run.`;
    byId(id).dataset.empty = text;
  }
}

let headerFrame = 0;

/** showHeader() once in the next frame, however many epochs arrive before it (a backlog sends hundreds). */
function showHeaderSoon() {
  headerFrame ||= requestAnimationFrame(() => {
    headerFrame = 0;
    showHeader();
  });
}

function showDetails() {
  const epochTimes = [...epochSeconds.values()];
  const rows = [
    ["Status", fmt.STATUS_LABELS[run.status] ?? run.status],
    ["Worker", run.worker ?? (run.execute ? "not yet claimed" : "your own loop")],
    ["Queue", run.queue],
    ["Created", fmt.dateTime(run.created_at)],
    ["Started", run.started_at ? fmt.dateTime(run.started_at) : null],
    ["Finished", run.finished_at ? fmt.dateTime(run.finished_at) : null],
    ["Duration", run.started_at ? fmt.duration(fmt.secondsBetween(run.started_at, run.finished_at)) : null],
    ["Queued for", run.started_at ? fmt.duration(fmt.secondsBetween(run.created_at, run.started_at)) : null],
    ["Epoch time", epochTimes.length ? `${fmt.duration(epochTimes.reduce((a, b) => a + b, 0) / epochTimes.length)} on average` : null],
    ["Attempts", run.attempts > 1 ? String(run.attempts) : null],
    ["Last heartbeat", run.status === "running" && run.heartbeat_at ? fmt.dateTime(run.heartbeat_at) : null],
    ["Epochs", run.config ? String(run.config.epochs) : null],
    ["Batch size", run.config ? String(run.config.batch_size) : null],
    ["Optimizer", run.config ? optimizerText(run.config) : null],
    ["Learning rate", run.config ? fmt.number(run.config.lr) : null],
    ["Weight decay", run.config ? fmt.number(run.config.weight_decay) : null],
    ["Device", run.config?.device],
    ...machineRows(run.machine),
  ];
  byId("details").replaceChildren(...rows.filter(([, value]) => value).flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
  byId("config-json").textContent = JSON.stringify(run.config ?? run.params ?? {}, null, 2);
}

/** The run's optimizer in words (a spec stored before the field existed trained with Adam). */
function optimizerText(config) {
  return config.optimizer === "sgd" ? `SGD, momentum ${fmt.number(config.momentum)}` : "Adam";
}

/** Where the run trained (its latest attempt), as its worker reported it. */
function machineRows(machine) {
  if (!machine) return [];
  const memory = Number.isFinite(machine.gpu_memory_mib) ? `, ${(machine.gpu_memory_mib / 1024).toFixed(0)} GiB` : "";
  const versions = [machine.torch && `torch ${machine.torch}`, machine.cuda && `CUDA ${machine.cuda}`, machine.version && `miles ${machine.version}`];
  return [
    ["Host", machine.host],
    ["Trained on", machine.device_name ? `${machine.device_name}${memory} (${machine.device})` : machine.device],
    ["Versions", versions.filter(Boolean).join(", ")],
  ];
}

// -- summary and downloads -----------------------------------------------------------------------

function showSummary() {
  const summary = run.summary;
  const box = byId("summary");
  if (!summary || !Object.keys(summary).length) {
    box.replaceChildren(h("p", { class: "muted" }, fmt.ACTIVE.has(run.status) ? "Written when the run ends." : "No summary was recorded."));
    return;
  }
  const used = new Set();
  const value = (key) => {
    used.add(key);
    return summary[key];
  };
  const heads = ["fused", ...(run.modalities ?? [])];
  const table = h("table", { class: "data-table compact" },
    h("caption", {}, `Test at the best validation epoch${Number.isFinite(summary.best_epoch) ? ` (${summary.best_epoch})` : ""}, and after the last`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Head"), h("th", { scope: "col", class: "num" }, "Validation"),
      h("th", { scope: "col", class: "num" }, "Test"), h("th", { scope: "col", class: "num" }, "Test, last epoch"))),
    h("tbody", {}, heads.map((head) => h("tr", {},
      h("th", { scope: "row" }, head),
      h("td", { class: "num" }, fmt.metric(value(`metric/val/${head}`))),
      h("td", { class: "num" }, fmt.metric(value(`metric/test/${head}`))),
      h("td", { class: "num" }, fmt.metric(value(`final/metric/test/${head}`)))))));
  const facts = [
    ["Best epoch", value("best_epoch")],
    ["Epochs completed", value("epochs_completed")],
    ["Training time", Number.isFinite(summary["time/train"]) ? fmt.duration(value("time/train")) : null],
    ["MILES actions", Number.isFinite(summary["miles/actions"]) ? slowedCounts(summary, used) : null],
  ];
  value("loss/test");
  value("final/loss/test");
  const rest = Object.entries(summary).filter(([key]) => !used.has(key));
  const list = h("dl", { class: "facts" },
    [...facts.filter(([, v]) => v !== null && v !== undefined), ...rest.map(([k, v]) => [k, typeof v === "number" ? fmt.number(v) : JSON.stringify(v)])]
      .flatMap(([term, v]) => [h("dt", {}, term), h("dd", {}, String(v))]));
  box.replaceChildren(table, list);
}

/** "7 (strong 7, weak 0)" */
function slowedCounts(summary, used) {
  used.add("miles/actions");
  const per = (run.modalities ?? []).map((m) => {
    used.add(`miles/slowed/${m}`);
    return `${m} ${summary[`miles/slowed/${m}`] ?? 0}`;
  });
  return `${summary["miles/actions"]} of ${summary.epochs_completed ?? "?"} epochs${per.length ? ` (${per.join(", ")})` : ""}`;
}

const FILE_LABELS = { "best.pt": "Best checkpoint", "last.pt": "Last checkpoint (for resuming)" };

async function showDownloads() {
  const base = `/api/v1/runs/${runId}`;
  const items = [
    h("li", {}, h("a", { href: api.url(`${base}/metrics.csv`), download: true }, "Metrics (CSV)"),
      h("span", { class: "muted" }, " every point: key, step, value, time")),
    h("li", {}, h("a", { href: api.url(`${base}/metrics.json`), download: true }, "Metrics (JSON)")),
  ];
  try {
    const files = await api.get(`/runs/${runId}/artifacts`);
    for (const file of files.items) {
      const name = file.path.split("/").at(-1);
      const label = FILE_LABELS[name] ?? name;
      const epoch = name === "best.pt" && Number.isFinite(run.summary?.best_epoch) ? `, epoch ${run.summary.best_epoch}` : "";
      items.push(h("li", {},
        h("a", { href: api.url(`${base}/artifacts/${file.path.split("/").map(encodeURIComponent).join("/")}`), download: true }, label),
        h("span", { class: "muted" }, ` ${file.path}, ${(file.size / 1e6).toFixed(2)} MB${epoch}`)));
    }
  } catch (error) {
    items.push(h("li", { class: "muted" }, `The run's files cannot be listed: ${error.message}`));
  }
  byId("downloads").replaceChildren(...items);
}

// -- events --------------------------------------------------------------------------------------

const KIND_LABELS = {
  "miles.decision": "MILES", "ogm.modulation": "OGM", "gblend.weights": "G-Blend", "mses.freeze": "MSES",
  "mslr.rates": "MSLR", "run.started": "started", "run.resumed": "resumed", "run.finished": "finished",
  "run.failed": "failed", "run.cancelled": "cancelled", "run.stopped_early": "stopped", "run.pruned": "pruned",
};

function addEvents(events) {
  const log = byId("events");
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  const items = [];
  for (const event of events) {
    if (seenEvents.has(event.id)) continue;
    seenEvents.add(event.id);
    lastEventId = Math.max(lastEventId ?? 0, event.id);
    if (event.kind === "miles.decision") charts.addDecision(event);
    const routine = event.kind === "miles.decision" && !event.data?.slowed;
    items.push(h("li", { class: `event kind-${event.kind.replace(/[^a-z0-9]+/gi, "-")}${routine ? " routine" : ""}` },
      h("time", { datetime: event.time, title: fmt.dateTime(event.time) }, fmt.clock(event.time)),
      h("span", { class: "event-step" }, `epoch ${event.step}`),
      h("span", { class: "event-kind" }, KIND_LABELS[event.kind] ?? event.kind),
      h("span", { class: "event-message" }, event.message)));
  }
  if (!items.length) return;
  log.append(...items);
  byId("events-empty").hidden = true;
  if (atBottom) log.scrollTop = log.scrollHeight;
}

// -- live ----------------------------------------------------------------------------------------

const LIVE_LABELS = { live: "Live", reconnecting: "Reconnecting…", ended: "" };

function follow(sinceStep, sinceSystem) {
  stream = followRun(runId, { sinceStep, afterEvent: lastEventId, sinceSystem }, {
    onStatus(status) {
      Object.assign(run, {
        status: status.status, error: status.error, error_detail: status.error_detail, worker: status.worker,
        machine: status.machine ?? run.machine, started_at: status.started_at, finished_at: status.finished_at, summary: status.summary ?? run.summary,
        progress: { epoch: Math.max(status.epoch ?? 0, run.progress.epoch), epochs: status.epochs ?? run.progress.epochs },
      });
      showAll();
    },
    onEpoch(step, metrics) {
      for (const [key, value] of Object.entries(metrics)) addPoint(key, step, value);
      noteEpoch(step);
      showHeaderSoon();
    },
    onSystem(second, metrics) {
      system.addSample(second, metrics);
    },
    onEvent(event) {
      addEvents([event]);
    },
    onEnd(final) {
      finish(final);
    },
    onState(state) {
      const box = byId("live-state");
      box.textContent = LIVE_LABELS[state];
      box.dataset.state = state;
    },
  });
}

/** The run ended (the stream sent everything first): its final record and files. */
async function finish(final) {
  if (final.status === "deleted") {
    showAlert(alertBox, "This run was deleted.");
    for (const node of document.querySelectorAll("#run-page .actions button")) node.hidden = true;
    return;
  }
  try {
    const seen = run.progress.epoch;
    run = await api.get(`/runs/${runId}`);
    noteEpoch(seen);
  } catch (error) {
    showAlert(alertBox, `The run ended, but its final record could not be loaded: ${error.message}`);
  }
  showAll();
  showDownloads();
}

/**
 * Progress is the larger of the server's count and the last step of the metrics: epochs arrive
 * between status messages, and a status (sent on every reconnect) must not take them back.
 */
function noteEpoch(step) {
  if (run.progress.epochs === null || step <= run.progress.epochs) {
    run.progress.epoch = Math.max(run.progress.epoch, step);
  }
}

function addPoint(key, step, value) {
  if (key === "time/epoch") epochSeconds.set(step, value);
  if (!methodCharts.addPoint(key, step, value)) charts.addPoint(key, step, value);
}

function addSeries(series) {
  for (const [key, { steps, values }] of Object.entries(series)) {
    if (isSystem(key)) {
      steps.forEach((second, i) => system.addPoint(key, second, values[i]));
      continue;
    }
    steps.forEach((step, i) => addPoint(key, step, values[i]));
    if (steps.length) noteEpoch(steps.at(-1));
  }
}

/** The last step of the series loaded, epochs and system seconds apart; null where none. */
function lastSteps(series) {
  const last = { epoch: -1, system: -1 };
  for (const [key, { steps }] of Object.entries(series)) {
    const kind = isSystem(key) ? "system" : "epoch";
    last[kind] = Math.max(last[kind], steps.at(-1) ?? -1);
  }
  return { epoch: last.epoch >= 0 ? last.epoch : null, system: last.system >= 0 ? last.system : null };
}

function showAll() {
  showHeader();
  showDetails();
  showSummary();
}

// -- actions -------------------------------------------------------------------------------------

function wireActions() {
  const cancelDialog = byId("cancel-dialog");
  byId("cancel").addEventListener("click", () => {
    byId("cancel-consequence").textContent = run.status === "queued"
      ? "It has not started and will not run; clone it to run it later."
      : "It stops after the current batch; what it has logged so far is kept. Clone it to train it again.";
    cancelDialog.returnValue = "";
    cancelDialog.showModal();
  });
  cancelDialog.addEventListener("close", async () => {
    if (cancelDialog.returnValue !== "cancel") return;
    byId("cancel").disabled = true;
    try {
      run = { ...run, ...(await api.post(`/runs/${runId}/cancel`)) };
      showAll();
    } catch (error) {
      showAlert(alertBox, `Could not cancel: ${error.message}`);
      byId("cancel").disabled = false;
    }
  });
  const dialog = byId("delete-dialog");
  byId("delete").addEventListener("click", () => {
    dialog.returnValue = "";
    dialog.showModal();
  });
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "delete") return;
    try {
      await api.remove(`/runs/${runId}`);
      stream?.close();
      location.assign(api.url("/"));
    } catch (error) {
      showAlert(alertBox, `Could not delete: ${error.message}`);
    }
  });
  byId("only-actions").addEventListener("change", (event) => {
    byId("events").classList.toggle("only-actions", event.target.checked);
  });
}

// -- start ---------------------------------------------------------------------------------------

async function start() {
  // The first answers of the API (the run, its dataset's catalogue entry, its metrics as at most 2,000
  // points per series, its events or null), or null: then everything is asked for.
  const first = preloaded("run-preloaded");
  try {
    run = first?.run ?? await api.get(`/runs/${runId}`);
  } catch (error) {
    const missing = error.status === 404;
    showAlert(alertBox, missing ? `There is no run ${runId}; it may have been deleted.` : `The run cannot be loaded: ${error.message}`);
    for (const node of document.querySelectorAll(".charts, .columns, #run-page .actions")) node.hidden = true;
    return;
  }
  const catalog = first?.catalog ?? await api.catalog().catch(() => null);
  const task = catalog?.datasets.find((d) => d.name === run.dataset)?.task;
  byId("metrics-title").textContent = `Metrics (${fmt.metricName(task)})`;
  charts = new RunCharts(run, fmt.metricName(task), modalityOrder(catalog, run.dataset, run.modalities ?? []));
  methodCharts = new MethodCharts(byId("charts"), charts);
  system = new SystemCard();
  showAll();
  wireActions();
  const [history, events] = await Promise.all([
    first?.metrics ?? api.get(`/runs/${runId}/metrics`, { max_points: 2000 }),
    first?.events ?? api.runEvents(runId),
  ]);
  addSeries(history.series);
  addEvents(events);
  showHeader();
  showDetails();
  showDownloads();
  if (fmt.ACTIVE.has(run.status)) {
    const last = lastSteps(history.series);
    follow(last.epoch, last.system);
  }
}

start().catch((error) => showAlert(alertBox, `The page could not load: ${error.message}`));
