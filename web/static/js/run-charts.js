/**
 * The four charts of a run, and which metric key goes to which of them:
 *
 * - modality balance: `util/<modality>`, the gap `util/delta` (filled, so that an
 *   imbalance is the first thing one sees), tau as a dashed line, and a marker on
 *   each epoch after which MILES slowed a modality (from `miles.decision` events);
 * - learning rates: `lr/<modality>` and `lr/fusion`, as steps on a log axis;
 * - metrics: `metric/val/<head>` as lines, `metric/test/<head>` as points;
 * - losses: `loss/train`, `loss/val` (and per head, hidden until chosen in the legend).
 */

import { byId } from "./dom.js";
import { LINE, LiveChart, plotlyText } from "./charts.js";
import * as fmt from "./format.js";

const MAX_RATE_TICKS = 6;

export class RunCharts {
  /**
   * @param {object} run  The run as the API returns it.
   * @param {string} metricLabel  "accuracy" or "F1".
   * @param {string[]} order  Every modality of the run's dataset in a fixed order (`modalityOrder`):
   *   a modality's place in it is its colour.
   */
  constructor(run, metricLabel, order) {
    this.modalities = [...order];
    this.rateValues = new Set();
    const tau = run.config?.params?.tau;
    const hasTau = run.method === "miles" && Number.isFinite(tau);
    const head = (name) => (name === "fused" ? "fused" : plotlyText(name));
    const colorOf = (name) => (t) => (name === "fused" ? t.fused : t.series[this.modalityIndex(name) % t.series.length]);

    this.balance = new LiveChart(byId("chart-balance"), {
      layout: {
        yaxis: { title: { text: "utilization u, gap δ" }, zeroline: true },
        ...(hasTau ? {
          shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, yref: "y", y0: tau, y1: tau, line: { dash: "dash", width: 1.5 } }],
          annotations: [{
            xref: "paper", x: 1, xanchor: "right", yref: "y", y: tau, yanchor: "bottom", showarrow: false,
            text: `τ = ${fmt.number(tau)}`, font: { size: 11 },
          }],
        } : {}),
      },
      themed: (t) => (hasTau ? { "shapes[0].line.color": t.tau, "annotations[0].font.color": t.muted } : {}),
      style: (id) => {
        if (id === "util/delta") {
          return {
            ...LINE, name: "gap δ", line: { width: 2.5 }, fill: "tozeroy", fillAlpha: 0.12, color: (t) => t.gap,
            legendrank: 1, hovertemplate: "gap δ %{y:.3f}<extra></extra>",
          };
        }
        const util = /^util\/(.+)$/.exec(id);
        if (util) {
          return {
            ...LINE, name: `u ${head(util[1])}`, line: { width: 1.75 },
            color: colorOf(util[1]), legendrank: 10 + this.modalityIndex(util[1]),
            hovertemplate: `u ${head(util[1])} %{y:.3f}<extra></extra>`,
          };
        }
        const slowed = /^slowed\/(.+)$/.exec(id);
        if (slowed) {
          return {
            name: `MILES slowed ${head(slowed[1])}`, mode: "markers", color: colorOf(slowed[1]),
            marker: { symbol: "triangle-down", size: 11, line: { width: 1, color: "rgba(0,0,0,0.35)" } },
            legendrank: 30 + this.modalityIndex(slowed[1]), hovertemplate: "%{text}<extra></extra>",
          };
        }
        return null;
      },
    });

    this.rates = new LiveChart(byId("chart-lr"), {
      layout: { yaxis: { title: { text: "learning rate" }, type: "log", exponentformat: "e" } },
      style: (id) => {
        const match = /^lr\/(.+)$/.exec(id);
        if (!match) return null;
        const fusion = match[1] === "fusion";
        return {
          ...LINE, name: fusion ? "fusion" : head(match[1]),
          line: { shape: "hv", width: fusion ? 1.5 : 2, dash: fusion ? "dot" : "solid" },
          color: fusion ? (t) => t.fused : colorOf(match[1]), legendrank: fusion ? 99 : this.modalityIndex(match[1]),
          hovertemplate: `${fusion ? "fusion" : head(match[1])} %{y:.2e}<extra></extra>`,
        };
      },
    });

    this.metrics = new LiveChart(byId("chart-metrics"), {
      layout: { yaxis: { title: { text: `${metricLabel} (validation)` } } },
      style: (id) => {
        const match = /^metric\/(val|test)\/(.+)$/.exec(id);
        if (!match) return null;
        const [, split, name] = match;
        const rank = name === "fused" ? 0 : 1 + this.modalityIndex(name);
        if (split === "val") {
          return {
            ...LINE, name: head(name), line: { width: name === "fused" ? 2.5 : 1.75 }, color: colorOf(name),
            legendgroup: name, legendrank: rank, hovertemplate: `${head(name)} %{y:.3f}<extra></extra>`,
          };
        }
        return {
          name: `${head(name)} (test)`, mode: "markers", marker: { symbol: "diamond", size: 9 }, color: colorOf(name),
          legendgroup: name, showlegend: false, hovertemplate: `${head(name)} test %{y:.3f}<extra></extra>`,
        };
      },
    });

    this.losses = new LiveChart(byId("chart-losses"), {
      layout: { yaxis: { title: { text: "loss" } } },
      style: (id) => {
        if (id === "loss/train" || id === "loss/val") {
          const train = id === "loss/train";
          return {
            ...LINE, name: train ? "train" : "validation", line: { width: 2, dash: train ? "solid" : "dash" },
            color: (t) => t.fused, legendrank: train ? 0 : 1, hovertemplate: `${train ? "train" : "validation"} %{y:.4f}<extra></extra>`,
          };
        }
        const perHead = /^loss\/val\/(.+)$/.exec(id);
        if (!perHead) return null;
        return {
          ...LINE, name: `${head(perHead[1])} (val)`, line: { width: 1.5 }, color: colorOf(perHead[1]),
          visible: "legendonly", legendrank: 10 + (perHead[1] === "fused" ? 0 : 1 + this.modalityIndex(perHead[1])),
          hovertemplate: `${head(perHead[1])} val %{y:.4f}<extra></extra>`,
        };
      },
    });
  }

  /** The position of a modality in the dataset's order (its colour on every chart). */
  modalityIndex(name) {
    if (!this.modalities.includes(name)) this.modalities.push(name);
    return this.modalities.indexOf(name);
  }

  /** A point of any key; keys no chart draws (e.g. `time/epoch`) are ignored. */
  addPoint(key, step, value) {
    if (key.startsWith("lr/")) this.noteRate(value);
    for (const chart of [this.balance, this.rates, this.metrics, this.losses]) {
      if (chart.set(key, step, value)) return;
    }
  }

  /**
   * A schedule like MILES's uses a handful of rates (alpha and mu * alpha): label exactly
   * those, with some room above and below; a continuously varying one gets Plotly's own ticks.
   */
  noteRate(value) {
    const rounded = Number(value.toPrecision(6));
    if (!(rounded > 0) || this.rateValues.has(rounded)) return;
    this.rateValues.add(rounded);
    const values = [...this.rateValues].sort((a, b) => a - b);
    if (values.length > MAX_RATE_TICKS) {
      if (values.length === MAX_RATE_TICKS + 1) this.rates.relayout({ "yaxis.tickmode": "auto", "yaxis.autorange": true });
      return;
    }
    const [low, high] = [Math.log10(values[0]), Math.log10(values.at(-1))];
    const pad = Math.max(0.1, (high - low) * 0.12);
    this.rates.relayout({
      "yaxis.tickmode": "array", "yaxis.tickvals": values, "yaxis.ticktext": values.map(fmt.rate),
      "yaxis.range": [low - pad, high + pad],
    });
  }

  /** A `miles.decision` event: a marker on the gap when MILES slowed a modality. */
  addDecision(event) {
    const decision = event.data ?? {};
    if (!decision.slowed || !Number.isFinite(decision.delta)) return;
    const rate = decision.learning_rates?.[decision.slowed];
    const text = [
      `<b>Epoch ${event.step}: MILES slowed ${plotlyText(decision.slowed)}</b>`,
      `to ${fmt.rate(rate)} for epoch ${event.step + 1}`,
      `gap ${fmt.metric(decision.delta)} > τ ${fmt.number(decision.tau)}`,
    ].join("<br>");
    this.balance.set(`slowed/${decision.slowed}`, event.step, decision.delta, text);
  }
}
