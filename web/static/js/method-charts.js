/**
 * The charts of what a balancing method moves, one per metric family, each added to the run page's
 * charts the first time a point of its family arrives (a run of another method shows none):
 *
 * - `ogm/coef/<modality>`: OGM's and OGM-GE's per-epoch mean gradient coefficient k (1: untouched);
 * - `weight/<head>`: G-Blend's loss weight of the fused head and each modality's head (they sum to 1);
 * - `frozen/<modality>`: MSES, 1 once a modality's encoder is frozen.
 *
 * MSLR's per-modality rates are `lr/<modality>`, drawn by the learning-rate chart of `RunCharts`.
 */

import { h } from "./dom.js";
import { LINE, LiveChart, plotlyText } from "./charts.js";

/** Per family: the key pattern, the card's title and caption, and the y axis. */
const FAMILIES = [
  {
    pattern: /^ogm\/coef\/(.+)$/, id: "chart-ogm", title: "Gradient modulation",
    caption: "OGM's mean coefficient k per epoch: the dominant modality's encoder gradients are scaled by k (1: untouched).",
    yaxis: { title: { text: "mean coefficient k" }, range: [0, 1.05] }, shape: "linear", format: ".3f",
  },
  {
    pattern: /^weight\/(.+)$/, id: "chart-weights", title: "Loss weights",
    caption: "G-Blend's weight of each head's loss, from its trial trainings (they sum to 1).",
    yaxis: { title: { text: "loss weight" }, rangemode: "tozero" }, shape: "hv", format: ".3f",
  },
  {
    pattern: /^frozen\/(.+)$/, id: "chart-frozen", title: "Frozen modalities",
    caption: "MSES: 1 from the epoch a modality's encoder stopped improving and was frozen.",
    yaxis: { title: { text: "frozen" }, range: [-0.05, 1.05], tickvals: [0, 1], ticktext: ["training", "frozen"] },
    shape: "hv", format: ".0f",
  },
];

export class MethodCharts {
  /**
   * @param {HTMLElement} section  Where the cards go (the run page's charts).
   * @param {import("./run-charts.js").RunCharts} runCharts  For each modality's colour.
   */
  constructor(section, runCharts) {
    this.section = section;
    this.runCharts = runCharts;
    /** @type {Map<string, LiveChart>} */
    this.charts = new Map();
  }

  /** A point of a method's family; false for any other key (left to the run's own charts). */
  addPoint(key, step, value) {
    const family = FAMILIES.find((f) => f.pattern.test(key));
    if (!family) return false;
    this.chart(family).set(key, step, value);
    return true;
  }

  chart(family) {
    let chart = this.charts.get(family.id);
    if (chart) return chart;
    const node = h("div", { class: "chart", id: family.id, "data-empty": `No ${family.title.toLowerCase()} yet.` });
    const card = h("figure", { class: "chart-card" },
      h("figcaption", {}, h("h2", {}, family.title), h("p", { class: "muted" }, family.caption)), node);
    // The cards keep the order of FAMILIES, whichever family's point came first.
    const later = FAMILIES.slice(FAMILIES.indexOf(family) + 1).map((f) => this.charts.get(f.id)).find(Boolean);
    this.section.insertBefore(card, later ? later.node.parentElement : null);
    chart = new LiveChart(node, {
      layout: { yaxis: family.yaxis, showlegend: true },
      style: (id) => {
        const name = family.pattern.exec(id)?.[1];
        if (name === undefined) return null;
        const fused = name === "fused";
        const label = fused ? "fused" : plotlyText(name);
        return {
          ...LINE, name: label, line: { width: fused ? 2.5 : 2, shape: family.shape },
          color: fused ? (t) => t.fused : (t) => t.series[this.runCharts.modalityIndex(name) % t.series.length],
          legendrank: fused ? 0 : 1 + this.runCharts.modalityIndex(name),
          hovertemplate: `${label} %{y:${family.format}}<extra></extra>`,
        };
      },
    });
    this.charts.set(family.id, chart);
    return chart;
  }
}
