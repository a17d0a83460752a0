/**
 * The paper's kind of table, as the server computes it (`GET /api/v1/results`, the same
 * numbers `miles compare` writes): per method and fusion, mean ± standard deviation over
 * seeds of the fused head's test metric, the dominant and the weak head, and their
 * difference Δ, at the best validation epoch and at the last. This module only lays the
 * numbers out; it computes none of them.
 */

import { url } from "./api.js";
import { h } from "./dom.js";
import * as fmt from "./format.js";

/** "0.951 ± 0.004" (no spread with one seed). */
function meanSd(stat) {
  if (!stat?.n || stat.mean === null) return fmt.DASH;
  return stat.sd === null ? fmt.metric(stat.mean) : `${fmt.metric(stat.mean)} ± ${fmt.metric(stat.sd)}`;
}

/** "2 running · 1 failed": the row's runs not (yet) in its numbers. */
function waiting(row) {
  return Object.entries(row.waiting).map(([status, count]) => `${count} ${fmt.STATUS_LABELS[status]?.toLowerCase() ?? status}`).join(" · ");
}

const COLUMNS = [["best", "fused", true], ["best", "dominant", true], ["best", "weak", true], ["best", "delta", false],
  ["last", "fused", true], ["last", "dominant", true], ["last", "weak", true], ["last", "delta", false], [null, "gap", false]];

/** The stat of a row in a column. */
function statOf(row, [epoch, head]) {
  return epoch ? row[epoch][head] : row[head];
}

/** How good a row's mean is in a column: higher metrics; Δ and the gap closest to 0. */
function merit(row, column) {
  const { mean } = statOf(row, column);
  return column[2] ? mean : -Math.abs(mean);
}

/** The best row of each column, when several rows have a value and one is ahead. */
function bestOf(rows) {
  const best = new Map();
  for (const column of COLUMNS) {
    const ranked = rows.filter((row) => statOf(row, column).mean !== null).sort((a, b) => merit(b, column) - merit(a, column));
    if (ranked.length > 1 && merit(ranked[0], column) !== merit(ranked[1], column)) best.set(column, ranked[0]);
  }
  return best;
}

function groupTitle(group) {
  const roles = group.dominant
    ? ` · dominant ${group.dominant}, weak ${group.weak}${group.basis === "joint" ? " (on validation, under joint training)" : " (on validation)"}`
    : " · dominant and weak: once a run has finished";
  return [`${group.dataset ?? "logged runs"} · ${fmt.modalities(group.modalities)} · ${group.metric}`, h("span", { class: "muted" }, roles)];
}

/**
 * The grouped table with its definitions, into `container`.
 * @param {HTMLElement} container
 * @param {object} table  The answer of `GET /api/v1/results`.
 */
export function renderResults(container, table) {
  if (!table.groups.length) {
    container.replaceChildren(h("p", { class: "muted" }, "No runs."));
    return;
  }
  const head = (text, extra = {}) => h("th", { scope: "col", class: "num", ...extra }, text);
  const element = h("table", { class: "data-table results-table" },
    h("caption", {}, "Test metrics: mean ± standard deviation over seeds"),
    h("thead", {},
      h("tr", {}, h("td", { colspan: 3 }), h("th", { scope: "colgroup", colspan: 4, class: "epoch-head" }, "At the best validation epoch"),
        h("th", { scope: "colgroup", colspan: 4, class: "epoch-head" }, "At the last epoch"), h("td", {})),
      h("tr", {},
        h("th", { scope: "col" }, "Method"), h("th", { scope: "col" }, "Fusion"), head("Seeds"),
        head("Fused"), head("Dominant head"), head("Weak head"), head("Δ"),
        head("Fused"), head("Dominant head"), head("Weak head"), head("Δ"), head("Gap δ"))));
  for (const group of table.groups) {
    const body = h("tbody", {}, h("tr", { class: "group-row" }, h("th", { scope: "rowgroup", colspan: 12 }, ...groupTitle(group))));
    const best = group.rows.length > 1 ? bestOf(group.rows) : new Map();
    for (const row of group.rows) {
      const left = waiting(row);
      body.append(h("tr", {},
        h("th", { scope: "row" }, row.method ?? "logged", row.label ? h("span", { class: "sub" }, row.label) : null),
        h("td", {}, row.fusion ?? fmt.DASH),
        h("td", { class: "num" }, String(row.seeds), left ? h("span", { class: "sub" }, left) : null),
        ...COLUMNS.map((column) => h("td", { class: `num${best.get(column) === row ? " best" : ""}` }, meanSd(statOf(row, column))))));
    }
    element.append(body);
  }
  const left = table.runs - table.counted;
  container.replaceChildren(
    h("div", { class: "table-wrap" }, element),
    h("dl", { class: "definitions" },
      h("dt", {}, "Fused"), h("dd", {}, "the fused head's test metric (accuracy, or F1 for multilabel tasks), at the epoch with the best validation fused metric, or at the last epoch."),
      h("dt", {}, "Dominant / weak head"), h("dd", {}, "that modality's own head, at the same epoch. The dominant modality is the one whose head scores higher on validation under joint training (across all these runs when none is a joint run), so that choosing the roles never looks at test data; MILES aims to lift the weak head without costing the fused one. A method of one modality alone shows each modality's ceiling in its column."),
      h("dt", {}, "Δ"), h("dd", {}, "dominant head − weak head, seed by seed: the paper's gap between the heads; closer to 0 is more balanced."),
      h("dt", {}, "Gap δ"), h("dd", {}, "the final utilization gap |u_A − u_B| (max u − min u with more modalities), after the last epoch, on the split MILES measures (validation by default)."),
      h("dt", {}, "±"), h("dd", {}, "the sample standard deviation over seeds (n − 1); a single seed shows its value alone. Bold marks the best mean of each column.")),
    left ? h("p", { class: "muted" }, `${left} ${left === 1 ? "run is" : "runs are"} not in the numbers: not (yet) succeeded.`) : "",
    table.complete === false ? h("p", { class: "muted" }, "The table holds the newest 2,000 of these runs.") : "",
  );
}

/** One row per run, in the order of `runs`: the values the grouped table averages. */
export function renderPerRun(container, runs, table) {
  const scored = new Map();
  for (const group of table.groups) {
    for (const row of group.rows) for (const score of row.runs) scored.set(score.id, { score, group });
  }
  const element = h("table", { class: "data-table compact" },
    h("caption", {}, "Each run"),
    h("thead", {}, h("tr", {}, ["Run", "Method", "Fusion", "Seed", "Status", "Fused", "Dominant head", "Weak head", "Gap δ"]
      .map((title, i) => h("th", { scope: "col", class: i >= 5 ? "num" : null }, title)))),
    h("tbody", {}, runs.map((run) => {
      const { score, group } = scored.get(run.id) ?? {};
      const head = (role) => (score && group?.[role] && score[role] !== null ? `${fmt.metric(score[role])} ${group[role]}` : fmt.DASH);
      return h("tr", {},
        h("th", { scope: "row" }, h("a", { href: url(`/runs/${run.id}`) }, run.name), h("span", { class: "run-meta" }, ` #${run.id}`)),
        h("td", {}, run.method ?? fmt.DASH), h("td", {}, run.fusion ?? fmt.DASH), h("td", {}, String(run.seed ?? fmt.DASH)),
        h("td", {}, fmt.STATUS_LABELS[run.status] ?? run.status),
        h("td", { class: "num" }, fmt.metric(score?.fused ?? NaN)), h("td", { class: "num" }, head("dominant")),
        h("td", { class: "num" }, head("weak")), h("td", { class: "num" }, fmt.metric(score?.gap ?? NaN)));
    })));
  container.replaceChildren(h("div", { class: "table-wrap" }, element));
}
