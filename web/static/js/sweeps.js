/** The sweeps page: every sweep, newest first, kept current while one is active. */

import * as api from "./api.js";
import { byId, h, poll, showAlert } from "./dom.js";
import * as fmt from "./format.js";
import { SWEEP_ACTIVE, bestText, sweepBadge, workBar } from "./sweep-format.js";

const POLL_MS = 3000;
let sweeps = [];

function row(sweep) {
  return h("tr", {},
    h("th", { scope: "row" }, h("a", { href: api.url(`/sweeps/${sweep.id}`) }, sweep.name), h("span", { class: "run-meta" }, ` #${sweep.id}`)),
    h("td", {}, sweepBadge(sweep)),
    h("td", {}, sweep.plan.methods.join(", ")),
    h("td", {}, sweep.plan.config.dataset),
    h("td", {}, sweep.plan.sampler),
    h("td", {}, workBar(sweep)),
    h("td", { class: "num" }, bestText(sweep)),
    h("td", {}, h("time", { datetime: sweep.created_at, title: fmt.dateTime(sweep.created_at) }, fmt.age(sweep.created_at))));
}

async function load() {
  const { items, complete } = await api.listAll("/sweeps");
  sweeps = items;
  byId("sweeps-table").tBodies[0].replaceChildren(...items.map(row));
  byId("sweeps-wrap").hidden = !items.length;
  byId("empty").hidden = items.length > 0;
  byId("list-status").textContent = items.length ? `${items.length} sweeps${complete ? "" : " (the newest; more exist)"}.` : "";
}

const retrying = (error) => {
  byId("list-status").textContent = `Could not refresh (${error.message}); trying again.`;
};

load()
  .then(() => poll(() => load().catch(retrying), POLL_MS, () => sweeps.some((s) => SWEEP_ACTIVE.has(s.status))).poke())
  .catch((error) => showAlert(byId("sweeps-alert"), `The sweeps cannot be loaded: ${error.message}`));
