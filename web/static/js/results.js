/**
 * The paper's kind of table, computed in the browser from runs as the API returns
 * them: one row per method and fusion, mean ± standard deviation over seeds of the
 * fused head's test metric, the dominant and the weak modality's own heads, and the
 * final utilization gap Δ.
 */

import { url } from "./api.js";
import { h } from "./dom.js";
import * as fmt from "./format.js";
import { describe, groupBy } from "./stats.js";

/** Methods in the order papers list them: the reference first, MILES last. */
const METHOD_ORDER = ["joint", "joint_aux"];

function methodRank(method) {
  if (method === "miles") return 1000;
  const index = METHOD_ORDER.indexOf(method);
  return index >= 0 ? index : 100;
}

/**
 * What a finished run contributes to the table: test metrics at its best validation
 * epoch (its summary) and its final utilization gap. Null for a run without them.
 */
export function outcome(run) {
  const summary = run.summary ?? {};
  const fused = summary["metric/test/fused"];
  if (run.status !== "succeeded" || !Number.isFinite(fused)) return null;
  const heads = {};
  for (const modality of run.modalities ?? []) {
    const value = summary[`metric/test/${modality}`];
    if (Number.isFinite(value)) heads[modality] = value;
  }
  return { fused, heads, delta: run.latest?.["util/delta"]?.value ?? NaN };
}

/**
 * A run's validation score of one modality's head: at its best validation epoch (its
 * summary), else the latest validation value (a run logged without a summary). Never a
 * test score: the roles label the test columns, so choosing them on test would leak.
 */
function validation(run, modality) {
  const best = run.summary?.[`metric/val/${modality}`];
  return Number.isFinite(best) ? best : run.latest?.[`metric/val/${modality}`]?.value ?? NaN;
}

/**
 * The dominant and the weak modality of a set of comparable runs: the heads that score
 * highest and lowest on validation, on average, under joint training (the paper's
 * definition, and `scripts/results.py`'s), or over all the runs when none is a joint run.
 */
export function dominance(runs) {
  const joint = runs.filter((run) => run.method === "joint");
  const basis = joint.length ? joint : runs;
  const means = new Map();
  for (const modality of basis[0]?.modalities ?? []) {
    means.set(modality, describe(basis.map((run) => validation(run, modality))).mean);
  }
  const ranked = [...means].filter(([, m]) => Number.isFinite(m)).sort((a, b) => b[1] - a[1]);
  if (ranked.length < 2) return null;
  return { dominant: ranked[0][0], weak: ranked.at(-1)[0], basis: joint.length ? "joint" : "all" };
}

/** Runs are comparable when they train on the same dataset and the same modalities, in any order. */
function comparable(run) {
  return `${run.dataset}\u0000${[...(run.modalities ?? [])].sort().join("+")}`;
}

/** "0.951 ± 0.004" (no spread with one seed). */
function meanStd(summary) {
  if (!summary.n) return fmt.DASH;
  return Number.isFinite(summary.std) ? `${fmt.metric(summary.mean)} ± ${fmt.metric(summary.std)}` : fmt.metric(summary.mean);
}

/** Settings shown as columns or irrelevant to the result; every other config difference splits a row. */
const SHOWN = new Set(["dataset", "modalities", "method", "fusion", "seed", "device", "data_path"]);

/** A run's settings as "path" -> JSON value, seeds and the columns above left out. */
function settings(run) {
  const flat = new Map();
  const walk = (value, path) => {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      for (const [key, inner] of Object.entries(value)) walk(inner, path ? `${path}.${key}` : key);
    } else if (!SHOWN.has(path)) {
      flat.set(path, JSON.stringify(value));
    }
  };
  walk(run.config ?? { method: run.method, fusion: run.fusion }, "");
  return flat;
}

const byPath = (a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/**
 * Per method, the settings (sorted) in which its runs differ: a path that some run of the
 * method lacks or holds another value of. One pass over every run's settings: a map per
 * method of path -> the values seen and how many runs hold it.
 * @param {{run: object, settings: Map<string, string>}[]} keyed
 * @returns {Map<string, string[]>}
 */
function differingSettings(keyed) {
  const byMethod = new Map();
  for (const { run, settings: s } of keyed) {
    let method = byMethod.get(run.method);
    if (!method) byMethod.set(run.method, (method = { runs: 0, paths: new Map() }));
    method.runs += 1;
    for (const [path, value] of s) {
      let seen = method.paths.get(path);
      if (!seen) method.paths.set(path, (seen = { values: new Set(), count: 0 }));
      seen.values.add(value);
      seen.count += 1;
    }
  }
  const differing = new Map();
  for (const [name, { runs, paths }] of byMethod) {
    differing.set(name, [...paths].filter(([, seen]) => seen.values.size > 1 || seen.count < runs).map(([path]) => path).sort());
  }
  return differing;
}

/**
 * The rows of one group of comparable runs (same dataset and modalities): runs that differ
 * only by seed share a row. Where rows of one method differ in other settings (tau 0.1
 * against tau 0.3, another learning rate), each row names its values of those settings.
 * @returns {{method: string, fusion: string, label: string, runs: object[], fused: object, dominant: object, weak: object, delta: object}[]}
 */
export function rows(runs, roles) {
  const keyed = runs.map((run) => ({ run, settings: settings(run) }));
  const groups = groupBy(keyed, ({ run, settings: s }) => JSON.stringify([run.method, run.fusion, [...s].sort(byPath)]));
  const differing = differingSettings(keyed);
  return [...groups.values()]
    .map((group) => {
      const outcomes = group.map(({ run }) => outcome(run));
      const first = group[0];
      const label = differing.get(first.run.method)
        .map((path) => `${path.split(".").at(-1)} ${first.settings.get(path) ?? "default"}`).join(" · ");
      return {
        method: first.run.method, fusion: first.run.fusion, label, runs: group.map(({ run }) => run),
        fused: describe(outcomes.map((o) => o.fused)),
        dominant: describe(outcomes.map((o) => o.heads[roles.dominant] ?? NaN)),
        weak: describe(outcomes.map((o) => o.heads[roles.weak] ?? NaN)),
        delta: describe(outcomes.map((o) => o.delta)),
      };
    })
    .sort((a, b) => methodRank(a.method) - methodRank(b.method) || a.method.localeCompare(b.method)
      || a.fusion.localeCompare(b.fusion) || a.label.localeCompare(b.label));
}

/**
 * The grouped table with its definitions, into `container`.
 * @param {HTMLElement} container
 * @param {object[]} runs
 * @param {object | null} catalog  Names the metric (accuracy or F1) of each dataset.
 */
export function renderResults(container, runs, catalog) {
  const finished = runs.filter((run) => outcome(run));
  const left = runs.length - finished.length;
  if (!finished.length) {
    container.replaceChildren(h("p", { class: "muted" },
      runs.length ? "No run has finished yet: the table fills in as runs succeed." : "No runs."));
    return;
  }
  const contexts = groupBy(finished, comparable);
  const table = h("table", { class: "data-table results-table" },
    h("caption", {}, "Test metrics at each run's best validation epoch: mean ± standard deviation over seeds"),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Method"), h("th", { scope: "col" }, "Fusion"), h("th", { scope: "col", class: "num" }, "Seeds"),
      h("th", { scope: "col", class: "num" }, "Fused"), h("th", { scope: "col", class: "num" }, "Dominant head"),
      h("th", { scope: "col", class: "num" }, "Weak head"), h("th", { scope: "col", class: "num" }, "Δ"))));
  for (const group of contexts.values()) {
    const roles = dominance(group);
    const first = group[0];
    const task = catalog?.datasets.find((d) => d.name === first.dataset)?.task;
    const body = h("tbody", {}, h("tr", { class: "group-row" }, h("th", { scope: "rowgroup", colspan: 7 },
      `${first.dataset} · ${fmt.modalities(first.modalities)} · ${fmt.metricName(task)}`,
      roles ? h("span", { class: "muted" }, ` · dominant ${roles.dominant}, weak ${roles.weak}${roles.basis === "joint" ? " (on validation, under joint training)" : " (on validation)"}`) : null)));
    const lines = rows(group, roles ?? { dominant: "", weak: "" });
    const best = bestOf(lines);
    for (const line of lines) {
      const cell = (key) => h("td", { class: `num${best[key] === line ? " best" : ""}` }, meanStd(line[key]));
      body.append(h("tr", {},
        h("th", { scope: "row" }, line.method, line.label ? h("span", { class: "sub" }, line.label) : null), h("td", {}, line.fusion),
        h("td", { class: "num" }, String(line.runs.length)),
        cell("fused"), cell("dominant"), cell("weak"), cell("delta")));
    }
    table.append(body);
  }
  container.replaceChildren(
    h("div", { class: "table-wrap" }, table),
    h("dl", { class: "definitions" },
      h("dt", {}, "Fused"), h("dd", {}, "the fused head's test metric (accuracy, or F1 for multilabel tasks) at the epoch with the best validation fused metric."),
      h("dt", {}, "Dominant / weak head"), h("dd", {}, "that modality's own head, at the same epoch. The dominant modality is the one whose head scores higher on validation under joint training (across all these runs when none is a joint run), so that choosing the roles never looks at test data; MILES aims to lift the weak head without costing the fused one."),
      h("dt", {}, "Δ"), h("dd", {}, "the final utilization gap |u_A − u_B| (max u − min u with more modalities), after the last epoch, on the split MILES measures (validation by default); lower is more balanced."),
      h("dt", {}, "±"), h("dd", {}, "the sample standard deviation over seeds (n − 1); a single seed shows its value alone. Bold marks the best mean of each column.")),
    left ? h("p", { class: "muted" }, `${left} ${left === 1 ? "run is" : "runs are"} left out: not (yet) succeeded.`) : "",
  );
}

/** The best row of each column (highest metrics, lowest gap), when there is more than one row. */
function bestOf(lines) {
  const best = {};
  if (lines.length < 2) return best;
  for (const [key, higher] of [["fused", true], ["dominant", true], ["weak", true], ["delta", false]]) {
    const ranked = lines.filter((line) => Number.isFinite(line[key].mean))
      .sort((a, b) => (higher ? b[key].mean - a[key].mean : a[key].mean - b[key].mean));
    if (ranked.length > 1 && ranked[0][key].mean !== ranked[1][key].mean) best[key] = ranked[0];
  }
  return best;
}

/** One row per run: the values the grouped table averages. */
export function renderPerRun(container, runs) {
  const contexts = groupBy(runs.filter((run) => outcome(run)), comparable);
  const roleOf = new Map();
  for (const group of contexts.values()) {
    const roles = dominance(group);
    for (const run of group) roleOf.set(run.id, roles);
  }
  const table = h("table", { class: "data-table compact" },
    h("caption", {}, "Each run"),
    h("thead", {}, h("tr", {}, ["Run", "Method", "Fusion", "Seed", "Status", "Fused", "Dominant head", "Weak head", "Δ"]
      .map((title, i) => h("th", { scope: "col", class: i >= 5 ? "num" : null }, title)))),
    h("tbody", {}, runs.map((run) => {
      const result = outcome(run);
      const roles = roleOf.get(run.id);
      const head = (role) => (result && roles ? `${fmt.metric(result.heads[roles[role]])} ${roles[role]}` : fmt.DASH);
      return h("tr", {},
        h("th", { scope: "row" }, h("a", { href: url(`/runs/${run.id}`) }, run.name), h("span", { class: "run-meta" }, ` #${run.id}`)),
        h("td", {}, run.method ?? fmt.DASH), h("td", {}, run.fusion ?? fmt.DASH), h("td", {}, String(run.seed ?? fmt.DASH)),
        h("td", {}, fmt.STATUS_LABELS[run.status] ?? run.status),
        h("td", { class: "num" }, fmt.metric(result?.fused)), h("td", { class: "num" }, head("dominant")),
        h("td", { class: "num" }, head("weak")), h("td", { class: "num" }, fmt.metric(run.latest?.["util/delta"]?.value)));
    })));
  container.replaceChildren(h("div", { class: "table-wrap" }, table));
}
