/**
 * The Workers page: `GET /api/v1/workers`, polled every two seconds while the tab is shown. Each row:
 * the process, its state (busy with a linked run, idle, or lost), queue, device, a sparkline of its
 * recent CPU and GPU utilization, and when it last beat.
 */

import * as api from "./api.js";
import { byId, h, poll } from "./dom.js";
import * as fmt from "./format.js";
import { sparkline } from "./sparkline.js";

const POLL_MS = 2000;
const STATUS_LABELS = { busy: "Busy", idle: "Idle", lost: "Lost" };
const body = byId("workers-table").tBodies[0];
const status = byId("workers-status");

/** "NVIDIA H200 · 141 GB" or the CPU's model. */
function device(worker) {
  const memory = Number.isFinite(worker.gpu_memory_mib) ? ` · ${(worker.gpu_memory_mib / 1024).toFixed(0)} GiB` : "";
  const versions = [worker.torch && `torch ${worker.torch}`, worker.cuda && `CUDA ${worker.cuda}`].filter(Boolean).join(", ");
  return [h("span", {}, `${worker.device_name}${memory}`), h("span", { class: "sub" }, `${worker.device}${versions ? ` · ${versions}` : ""}`)];
}

function utilization(worker) {
  const recent = worker.recent ?? [];
  if (!recent.length) return h("span", { class: "muted" }, fmt.DASH);
  const cpu = recent.map((r) => r[1]);
  const gpu = recent.map((r) => r[2]);
  const hasGpu = gpu.some(Number.isFinite);
  const last = recent.at(-1);
  const text = `CPU ${fmt.number(last[1])} %${hasGpu ? `, GPU ${Number.isFinite(last[2]) ? `${fmt.number(last[2])} %` : fmt.DASH}` : ""}`;
  const lines = [{ values: cpu, className: "spark-cpu" }, ...(hasGpu ? [{ values: gpu, className: "spark-gpu" }] : [])];
  return h("span", { class: "utilization" },
    sparkline(lines, { max: 100, label: `Recent utilization, latest ${text}` }),
    h("span", { class: "sub" }, text));
}

function row(worker) {
  const run = worker.run
    ? h("a", { href: api.url(`/runs/${worker.run.id}`) }, worker.run.name ?? `run ${worker.run.id}`)
    : h("span", { class: "muted" }, fmt.DASH);
  const badge = h("span", { class: `badge worker-${worker.status}`, title: worker.status === "lost" ? "No heartbeat within its timeout: the process died, hangs or lost its database" : null },
    STATUS_LABELS[worker.status] ?? worker.status);
  return h("tr", { dataset: { worker: worker.name, status: worker.status } },
    h("th", { scope: "row" }, h("span", {}, worker.process), h("span", { class: "sub" }, `${worker.host} · pid ${worker.pid}`)),
    h("td", {}, badge),
    h("td", {}, worker.queues.join(", ")),
    h("td", {}, device(worker)),
    h("td", {}, worker.status === "lost" && worker.run ? [h("span", { class: "sub" }, "was training "), run] : run),
    h("td", {}, utilization(worker)),
    h("td", {}, h("time", { datetime: worker.heartbeat_at, title: fmt.dateTime(worker.heartbeat_at) }, fmt.age(worker.heartbeat_at))),
    h("td", {}, h("time", { datetime: worker.started_at, title: fmt.dateTime(worker.started_at) }, fmt.age(worker.started_at))));
}

async function load() {
  let listing;
  try {
    listing = await api.get("/workers");
  } catch (error) {
    status.textContent = `Could not load the workers: ${error.message}`;
    status.classList.add("error-text");
    return;
  }
  status.classList.remove("error-text");
  status.textContent = "";
  const workers = listing.items;
  body.replaceChildren(...workers.map(row));
  const live = workers.filter((w) => w.status !== "lost");
  byId("workers-wrap").hidden = !workers.length;
  byId("workers-empty").hidden = live.length > 0;
  const busy = live.filter((w) => w.status === "busy").length;
  byId("workers-summary").textContent = workers.length
    ? `${live.length} live (${busy} busy)${workers.length > live.length ? `, ${workers.length - live.length} lost` : ""}`
    : "";
}

const refresher = poll(load, POLL_MS, () => true);
load().finally(() => refresher.poke());
