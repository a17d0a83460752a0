/**
 * The table of runs (home and experiment pages). Its columns are the `data-col`
 * headers of the template's table; rows are updated in place, cell by cell, so a
 * poll every two seconds neither flickers nor takes the keyboard focus away.
 */

import { compareUrl, url } from "./api.js";
import { h } from "./dom.js";
import * as fmt from "./format.js";

/**
 * The fused head's score and the weakest modality head of a run: test metrics at the
 * best validation epoch once it has them, else the latest validation values.
 * @returns {{split: "test" | "val", fused: number, weak: {modality: string, value: number} | null}}
 */
export function headline(run) {
  const summary = run.summary ?? {};
  const split = Number.isFinite(summary["metric/test/fused"]) ? "test" : "val";
  const value = (head) => (split === "test" ? summary[`metric/test/${head}`] : run.latest?.[`metric/val/${head}`]?.value);
  let weak = null;
  for (const modality of run.modalities ?? []) {
    const score = value(modality);
    if (Number.isFinite(score) && (weak === null || score < weak.value)) weak = { modality, value: score };
  }
  return { split, fused: value("fused"), weak };
}

/** The method's numeric hyperparameters, e.g. "tau 0.2 · mu 0.5". */
export function methodParams(run) {
  const params = run.config?.params ?? {};
  return Object.entries(params)
    .filter(([, v]) => typeof v === "number")
    .map(([k, v]) => `${k} ${fmt.number(v)}`)
    .join(" · ");
}

/** A status badge. */
export function statusBadge(run) {
  const stopping = run.status === "running" && run.cancel_requested;
  return h("span", {
    class: `badge status-${run.status}`, title: run.status === "failed" && run.error ? run.error : null,
  }, stopping ? "Stopping" : fmt.STATUS_LABELS[run.status] ?? run.status);
}

/** The warning of a queued run that no live worker would take, with the command that serves its queue. */
export function unservedNote(run) {
  if (!run.unserved) return null;
  return h("span", { class: "unserved", role: "note", title: run.unserved.message },
    `No worker on the ${run.unserved.queue} queue: run `, h("code", {}, run.unserved.command));
}

/** A progress bar with "epoch of epochs". */
export function progressBar(run, large = false) {
  const { epoch, epochs } = run.progress;
  const share = epochs ? Math.min(1, epoch / epochs) : 0;
  const bar = h("span", {
    class: `bar${large ? " large" : ""} status-${run.status}`, role: "progressbar",
    "aria-valuemin": 0, "aria-valuemax": epochs ?? 0, "aria-valuenow": epoch,
    "aria-label": `Epoch ${epoch}${epochs ? ` of ${epochs}` : ""}`,
  }, h("span", { class: "bar-fill" }));
  bar.firstChild.style.setProperty("width", `${(share * 100).toFixed(1)}%`);
  return h("span", { class: "progress" }, bar, h("span", { class: "progress-text" }, epochs ? `${epoch}/${epochs}` : `${epoch}`));
}

/** The last utilization gap, as a small bar (with the run's tau marked) and its value. */
export function gapBar(run) {
  const delta = run.latest?.["util/delta"]?.value;
  if (!Number.isFinite(delta)) return h("span", { class: "muted" }, fmt.DASH);
  const tau = run.config?.params?.tau;
  const over = Number.isFinite(tau) && delta > tau;
  const bar = h("span", { class: `gap-bar${over ? " over" : ""}`, "aria-hidden": "true" }, h("span", { class: "gap-fill" }));
  bar.firstChild.style.setProperty("width", `${Math.min(100, delta * 100).toFixed(1)}%`);
  if (Number.isFinite(tau)) {
    const tick = h("span", { class: "gap-tau" });
    tick.style.setProperty("left", `${Math.min(100, tau * 100).toFixed(1)}%`);
    bar.append(tick);
  }
  const label = Number.isFinite(tau) ? `gap ${fmt.metric(delta)}, tau ${fmt.number(tau)}` : `gap ${fmt.metric(delta)}`;
  return h("span", { class: "gap", title: label }, bar, h("span", { class: "num" }, fmt.metric(delta)));
}

const DASH = () => h("span", { class: "muted" }, fmt.DASH);

/**
 * Each column: `[signature, render]`; a cell is rebuilt only when its signature changes.
 * @type {Record<string, (run: object) => [string, () => (Node | string)[]]>}
 */
const COLUMNS = {
  name: (run) => [JSON.stringify([run.name, run.tags]), () => [
    h("a", { href: url(`/runs/${run.id}`), class: "run-link" }, run.name),
    h("span", { class: "run-meta" }, `#${run.id}`, ...run.tags.map((tag) => h("span", { class: "tag" }, tag))),
  ]],
  experiment: (run) => [String(run.experiment_id), () => [
    run.experiment ? h("a", { href: url(`/experiments/${run.experiment_id}`) }, run.experiment) : DASH(),
  ]],
  dataset: (run) => [String(run.dataset), () => [run.dataset ?? h("span", { class: "muted" }, run.execute ? fmt.DASH : "logged")]],
  modalities: (run) => [String(run.modalities), () => [fmt.modalities(run.modalities)]],
  fusion: (run) => [String(run.fusion), () => [run.fusion ?? DASH()]],
  method: (run) => [JSON.stringify([run.method, run.config?.params]), () => [
    run.method ?? DASH(), methodParams(run) ? h("span", { class: "sub" }, methodParams(run)) : null,
  ]],
  status: (run) => [`${run.status}${run.cancel_requested}${run.unserved?.queue}`, () => [statusBadge(run), unservedNote(run)]],
  progress: (run) => [JSON.stringify([run.progress, run.status]), () => [progressBar(run)]],
  fused: (run) => {
    const { split, fused } = headline(run);
    return [`${split}${fused}`, () => [
      h("span", { class: "num" }, fmt.metric(fused)),
      Number.isFinite(fused) ? h("span", { class: "sub", title: split === "test" ? "test, at the best validation epoch" : "validation, latest epoch" }, split) : null,
    ]];
  },
  weak: (run) => {
    const { weak } = headline(run);
    return [JSON.stringify(weak), () => weak
      ? [h("span", { class: "num" }, fmt.metric(weak.value)), h("span", { class: "sub" }, weak.modality)]
      : [DASH()]];
  },
  gap: (run) => [JSON.stringify([run.latest?.["util/delta"]?.value, run.config?.params?.tau]), () => [gapBar(run)]],
  age: (run) => [fmt.age(run.created_at), () => [
    h("time", { datetime: run.created_at, title: fmt.dateTime(run.created_at) }, fmt.age(run.created_at)),
  ]],
};

export class RunsTable {
  /**
   * @param {HTMLTableElement} table
   * @param {{compare?: HTMLButtonElement, count?: HTMLElement}} [controls]  The Compare button, which opens the
   *   compare page with the checked runs, and where to show how many are checked.
   */
  constructor(table, { compare = null, count = null } = {}) {
    this.table = table;
    this.body = table.tBodies[0];
    /** @type {Set<number>} Ids of the checked runs, kept across pages and refreshes. */
    this.selected = new Set();
    this.compare = compare;
    this.count = count;
    compare?.addEventListener("click", () => location.assign(compareUrl([...this.selected].sort((a, b) => a - b))));
    this.columns = [...table.tHead.rows[0].cells].map((cell) => cell.dataset.col);
    /** @type {Map<number, {row: HTMLTableRowElement, signatures: string[]}>} */
    this.rows = new Map();
    this.runs = [];
    this.pageBox = table.querySelector("#select-page");
    this.pageBox?.addEventListener("change", () => {
      for (const run of this.runs) {
        if (this.pageBox.checked) this.selected.add(run.id);
        else this.selected.delete(run.id);
      }
      this.syncChecks();
    });
    this.showSelection();
  }

  /** The Compare button: enabled from two checked runs, with their count. */
  showSelection() {
    const count = this.selected.size;
    if (this.count) this.count.textContent = count ? `(${count})` : "";
    if (this.compare) {
      this.compare.disabled = count < 2;
      this.compare.title = count < 2 ? "Select two or more runs to compare" : "";
    }
  }

  /** Show `runs`, in this order, reusing the rows of runs already shown. */
  update(runs) {
    this.runs = runs;
    const keep = new Set(runs.map((run) => run.id));
    for (const [id, entry] of this.rows) {
      if (!keep.has(id)) {
        entry.row.remove();
        this.rows.delete(id);
      }
    }
    runs.forEach((run, position) => {
      let entry = this.rows.get(run.id);
      if (!entry) {
        entry = { row: this.newRow(run), signatures: [] };
        this.rows.set(run.id, entry);
      }
      this.fill(entry, run);
      if (this.body.rows[position] !== entry.row) this.body.insertBefore(entry.row, this.body.rows[position] ?? null);
    });
    this.syncChecks();
  }

  newRow(run) {
    const row = h("tr", { dataset: { runId: run.id } });
    for (const column of this.columns) {
      if (column === "select") {
        const box = h("input", { type: "checkbox", "aria-label": `Select run ${run.name}` });
        box.addEventListener("change", () => {
          if (box.checked) this.selected.add(run.id);
          else this.selected.delete(run.id);
          this.syncChecks();
        });
        row.append(h("td", { class: "col-select" }, box));
      } else if (column === "name") {
        row.append(h("th", { scope: "row", class: "col-name" }));
      } else {
        row.append(h("td", { class: `col-${column}` }));
      }
    }
    return row;
  }

  fill(entry, run) {
    this.columns.forEach((column, index) => {
      const render = COLUMNS[column];
      if (!render) return;
      const [signature, content] = render(run);
      if (entry.signatures[index] === signature) return;
      entry.signatures[index] = signature;
      entry.row.cells[index].replaceChildren(...content().filter((node) => node !== null));
    });
    const box = entry.row.querySelector(".col-select input");
    if (box) box.setAttribute("aria-label", `Select run ${run.name}`);
  }

  /** The checkboxes and the Compare button, after the selection or the rows changed. */
  syncChecks() {
    for (const [id, entry] of this.rows) {
      const box = entry.row.querySelector(".col-select input");
      if (box) box.checked = this.selected.has(id);
    }
    if (this.pageBox) {
      const checked = this.runs.filter((run) => this.selected.has(run.id)).length;
      this.pageBox.checked = checked > 0 && checked === this.runs.length;
      this.pageBox.indeterminate = checked > 0 && checked < this.runs.length;
    }
    this.showSelection();
  }
}
