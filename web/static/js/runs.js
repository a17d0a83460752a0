/**
 * The runs page: filters, sort and cursor pagination through `GET /api/v1/runs`,
 * statuses kept current by polling while a visible run is queued or running, and
 * a selection to compare.
 */

import * as api from "./api.js";
import { byId, debounce, h, poll } from "./dom.js";
import { ACTIVE } from "./format.js";
import { RunsTable } from "./runs-table.js";

const PAGE_SIZE = 50;
const POLL_MS = 2000;
const FILTERS = ["q", "status", "method", "dataset", "fusion", "experiment", "tag"];

const form = byId("filters");
const status = byId("list-status");
const table = new RunsTable(byId("runs-table"), { compare: byId("compare"), count: byId("selected-count") });
const params = new URLSearchParams(location.search);
const state = {
  sort: params.get("sort") || "-created_at",
  ids: api.idsParam(params),
  cursors: [null], // cursors[i] opens page i
  page: 0,
  next: null,
};

function filters() {
  const data = new FormData(form);
  return Object.fromEntries(FILTERS.map((name) => [name, String(data.get(name) ?? "").trim()]));
}

function query() {
  return { ...filters(), sort: state.sort, id: state.ids, limit: PAGE_SIZE, cursor: state.cursors[state.page] };
}

/** Keep the filters and sort in the address, so a filtered list can be bookmarked or shared. */
function rememberInUrl() {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(filters())) if (value) search.set(name, value);
  if (state.sort !== "-created_at") search.set("sort", state.sort);
  if (state.ids.length) search.set("ids", state.ids.join(","));
  history.replaceState(null, "", `${location.pathname}${search.size ? `?${search}` : ""}`);
}

let loading = null;

/** Load the current page; `announce` says so in the status line (not for the background poll). */
async function load(announce = true) {
  loading?.abort();
  const controller = new AbortController();
  loading = controller;
  let page;
  try {
    page = await api.request("GET", "/runs", { query: query(), signal: controller.signal });
  } catch (error) {
    if (error.name === "AbortError") return;
    status.textContent = `Could not load the runs: ${error.message}`;
    status.classList.add("error-text");
    return;
  } finally {
    if (loading === controller) loading = null;
  }
  status.classList.remove("error-text");
  state.next = page.next_cursor;
  table.update(page.items);
  showPager(page.items.length);
  showEmpty(page.items.length === 0);
  if (announce) {
    const first = state.page * PAGE_SIZE + 1;
    status.textContent = page.items.length
      ? `Showing runs ${first} to ${first + page.items.length - 1}${page.next_cursor ? "" : " (the last)"}.`
      : "No runs to show.";
  }
  refresher.poke();
}

const refresher = poll(() => load(false), POLL_MS, () => table.runs.some((run) => ACTIVE.has(run.status)));

function showPager(count) {
  byId("prev").disabled = state.page === 0;
  byId("next").disabled = !state.next;
  byId("page-label").textContent = count || state.page ? `Page ${state.page + 1}` : "";
}

function showEmpty(empty) {
  const filtered = Object.values(filters()).some(Boolean) || state.ids.length > 0;
  byId("runs-wrap").hidden = empty;
  byId("empty").hidden = !empty;
  if (!empty) return;
  byId("empty-title").textContent = filtered ? "No runs match" : "No runs yet";
  byId("empty-text").textContent = filtered
    ? "Nothing matches these filters. Clear them to see every run."
    : "Submit a training run and watch, epoch by epoch, how the network balances its modalities.";
  const action = byId("empty-action");
  action.textContent = filtered ? "Clear filters" : "New run";
  action.href = filtered ? api.url("/") : api.url("/runs/new");
}

function showSort() {
  for (const header of document.querySelectorAll("th[data-sort]")) {
    const column = header.dataset.sort;
    const current = state.sort.replace(/^-/, "");
    header.setAttribute("aria-sort", column !== current ? "none" : state.sort.startsWith("-") ? "descending" : "ascending");
  }
}

function restart() {
  state.cursors = [null];
  state.page = 0;
  rememberInUrl();
  load();
}

/** Fill the choices of the filters from the catalogue and the experiments. */
async function fillChoices() {
  const [catalog, experiments] = await Promise.all([api.catalog(), api.get("/experiments", { limit: 500, sort: "name" })]);
  const options = (name, items) => {
    const select = form.elements.namedItem(name);
    const current = params.get(name);
    select.append(...items.map(([value, label]) => h("option", { value }, label)));
    if (current) select.value = current;
  };
  options("method", catalog.methods.map((m) => [m.name, m.title]));
  options("dataset", catalog.datasets.map((d) => [d.name, d.title]));
  options("fusion", catalog.fusions.map((f) => [f.name, f.name]));
  options("experiment", experiments.items.map((e) => [String(e.id), e.name]));
}

function wire() {
  for (const name of ["q", "tag"]) {
    form.elements.namedItem(name).value = params.get(name) ?? "";
  }
  form.elements.namedItem("status").value = params.get("status") ?? "";
  form.addEventListener("change", (event) => {
    if (event.target.name !== "q" && event.target.name !== "tag") restart();
  });
  const typed = debounce(restart, 300);
  form.addEventListener("input", (event) => {
    if (event.target.name === "q" || event.target.name === "tag") typed();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    restart();
  });
  form.addEventListener("reset", () => setTimeout(restart));
  for (const header of document.querySelectorAll("th[data-sort]")) {
    header.querySelector("button").addEventListener("click", () => {
      const column = header.dataset.sort;
      const descendingFirst = column === "created_at";
      if (state.sort === column) state.sort = `-${column}`;
      else if (state.sort === `-${column}`) state.sort = column;
      else state.sort = descendingFirst ? `-${column}` : column;
      showSort();
      restart();
    });
  }
  byId("prev").addEventListener("click", () => {
    state.page -= 1;
    load();
  });
  byId("next").addEventListener("click", () => {
    state.cursors[state.page + 1] = state.next;
    state.page += 1;
    load();
  });
  if (state.ids.length) {
    byId("scope").hidden = false;
    byId("scope-text").textContent = `Showing the ${state.ids.length} runs just submitted.`;
  }
  // Ages ("3 min ago") move on even when nothing else does.
  setInterval(() => table.update(table.runs), 30_000);
}

wire();
showSort();
fillChoices()
  .catch((error) => {
    status.textContent = `Could not load the filter choices: ${error.message}`;
  })
  .finally(load);
