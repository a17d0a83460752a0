/** How a sweep reads on every page: its status, its progress over runs, each method's best. */

import { h } from "./dom.js";
import * as fmt from "./format.js";

export const SWEEP_STATUS_LABELS = {
  searching: "Searching", confirming: "Rerunning the best", succeeded: "Succeeded", failed: "Failed", cancelled: "Cancelled",
};
export const SWEEP_ACTIVE = new Set(["searching", "confirming"]);

/** A status badge; the active statuses take the running colour. */
export function sweepBadge(sweep) {
  const tone = SWEEP_ACTIVE.has(sweep.status) ? "running" : sweep.status;
  return h("span", { class: `badge status-${tone}`, title: sweep.error ?? null }, SWEEP_STATUS_LABELS[sweep.status] ?? sweep.status);
}

/** Runs ended and runs planned: every method's trials, then the reruns of each best. */
export function work(sweep) {
  const progress = Object.values(sweep.progress);
  const done = progress.reduce((sum, p) => sum + p.complete + p.pruned + p.failed + p.reruns_done, 0);
  const methods = sweep.best ? Object.keys(sweep.best).length : sweep.plan.methods.length;
  const planned = Object.values(sweep.plan.budgets).reduce((a, b) => a + b, 0) + sweep.plan.seeds_for_best * methods;
  return { done, planned };
}

/** A progress bar over the sweep's runs. */
export function workBar(sweep) {
  const { done, planned } = work(sweep);
  const share = planned ? Math.min(1, done / planned) : 0;
  const tone = SWEEP_ACTIVE.has(sweep.status) ? "running" : sweep.status;
  const bar = h("span", {
    class: `bar status-${tone}`, role: "progressbar", "aria-valuemin": 0, "aria-valuemax": planned, "aria-valuenow": done,
    "aria-label": `${done} of ${planned} runs ended`,
  }, h("span", { class: "bar-fill" }));
  bar.firstChild.style.setProperty("width", `${(share * 100).toFixed(1)}%`);
  return h("span", { class: "progress" }, bar, h("span", { class: "progress-text" }, `${done}/${planned}`));
}

/** "miles 0.953 · joint 0.948", the best objective of each method once the search is over. */
export function bestText(sweep) {
  const best = Object.entries(sweep.best ?? {});
  return best.length ? best.map(([method, b]) => `${method} ${fmt.metric(b.value)}`).join(" · ") : fmt.DASH;
}
