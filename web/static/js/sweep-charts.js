/**
 * The sweep page's charts: the best objective so far against trial number (a `LiveChart`,
 * so new trials extend it), each field's importance (bars), and the finished trials across
 * the search space (Plotly's parallel coordinates).
 */

import { LINE, LiveChart, plotlyText } from "./charts.js";
import { theme } from "./theme.js";

const CONFIG = { displaylogo: false, responsive: true };

/** The best objective of each method up to each trial number, and every finished trial's own, as chart points. */
export function bestSoFar(trials) {
  const points = new Map();
  const byMethod = new Map();
  for (const trial of trials) {
    if (trial.role !== "trial" || trial.state !== "complete" || !Number.isFinite(trial.value)) continue;
    if (!byMethod.has(trial.method)) byMethod.set(trial.method, []);
    byMethod.get(trial.method).push(trial);
  }
  for (const [method, finished] of byMethod) {
    finished.sort((a, b) => a.number - b.number);
    let best = -Infinity;
    for (const trial of finished) {
      best = Math.max(best, trial.value);
      points.set(`best/${method}/${trial.number}`, [`best/${method}`, trial.number, best]);
      points.set(`trial/${method}/${trial.number}`, [`trial/${method}`, trial.number, trial.value]);
    }
  }
  return [...points.values()];
}

export class BestChart {
  constructor(node, methods) {
    this.methods = methods;
    this.chart = new LiveChart(node, {
      style: (id) => this.style(id),
      layout: { xaxis: { title: { text: "trial" } }, yaxis: { title: { text: "objective (validation)" } }, hovermode: "closest" },
    });
  }

  style(id) {
    const [kind, method] = id.split("/");
    const index = this.methods.indexOf(method);
    if (index < 0) return null;
    const color = (t) => t.series[index % t.series.length];
    const name = plotlyText(method);
    if (kind === "best") return { ...LINE, name: `${name}, best so far`, color, line: { width: 2, shape: "hv" }, legendrank: index };
    return {
      mode: "markers", name: `${name} trials`, color, marker: { size: 6, opacity: 0.45 }, legendrank: 100 + index,
      hovertemplate: `${name} trial %{x}: %{y:.4f}<extra></extra>`,
    };
  }

  update(trials) {
    for (const [id, step, value] of bestSoFar(trials)) this.chart.set(id, step, value);
  }
}

function themedLayout(extra) {
  const t = theme();
  return {
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: { color: t.text, family: t.font, size: 12 },
    ...extra,
  };
}

/** Horizontal bars of each field's importance for one method; an empty chart says why. */
export function drawImportance(node, importance) {
  const entries = Object.entries(importance ?? {}).sort((a, b) => a[1] - b[1]);
  node.dataset.state = entries.length ? "drawn" : "empty";
  const t = theme();
  const trace = {
    type: "bar", orientation: "h", x: entries.map(([, v]) => v), y: entries.map(([k]) => plotlyText(k)),
    marker: { color: t.series[0] }, hovertemplate: "%{y}: %{x:.3f}<extra></extra>",
  };
  return window.Plotly.react(node, entries.length ? [trace] : [], themedLayout({
    margin: { t: 8, r: 12, b: 40, l: 120 }, xaxis: { title: { text: "importance" }, range: [0, 1], gridcolor: t.grid },
    yaxis: { automargin: true },
  }), CONFIG);
}

/** One axis of the parallel coordinates: numbers as they are (log10 for a log range), choices as ticks. */
function axis(label, values, dimension) {
  if (dimension?.log) {
    return { label: `log10 ${label}`, values: values.map((v) => Math.log10(v)) };
  }
  if (values.every((v) => typeof v === "number")) return { label, values };
  const choices = [...new Set(values.map(String))];
  return { label, values: values.map((v) => choices.indexOf(String(v))), tickvals: choices.map((_, i) => i), ticktext: choices };
}

/** The finished trials of one method across its search space, coloured by objective. */
export function drawTrials(node, trials, space) {
  const finished = trials.filter((t) => t.role === "trial" && t.state === "complete" && Number.isFinite(t.value));
  node.dataset.state = finished.length ? "drawn" : "empty";
  if (!finished.length) return window.Plotly.react(node, [], themedLayout({}), CONFIG);
  const paths = Object.keys(space);
  const values = finished.map((t) => t.value);
  const dimensions = [
    ...paths.map((path) => axis(plotlyText(path), finished.map((t) => t.params[path]), space[path])),
    { label: "objective", values },
  ];
  const t = theme();
  return window.Plotly.react(node, [{
    type: "parcoords", dimensions,
    line: { color: values, colorscale: "Viridis", showscale: true, colorbar: { title: { text: "objective" } } },
    labelfont: { color: t.text }, tickfont: { color: t.muted }, rangefont: { color: t.muted },
  }], themedLayout({ margin: { t: 36, r: 40, b: 24, l: 60 } }), CONFIG);
}
