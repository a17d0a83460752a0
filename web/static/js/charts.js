/**
 * Charts that grow while a run trains.
 *
 * A chart keeps its own copy of every point it draws (series id -> step -> value).
 * `set` only records a point and marks the chart dirty; once per animation frame,
 * every dirty chart draws what changed in as few Plotly calls as possible:
 * `addTraces` for series seen for the first time, `extendTraces` for points after
 * a series' last step (the usual case: one new epoch), and `restyle` of a whole
 * series only when a point lands at or before its last step (a value replaced, or
 * the test metric of an earlier best epoch). Thousands of points arriving in one
 * frame therefore cost one redraw, and a hidden tab costs none until it is shown.
 *
 * Charts are laid out and drawn one per frame, the highest on the page first, so that the
 * first chart is on screen before the others are laid out: in one task, the six charts of a
 * run page kept it blank for 0.8 s on a slow machine. A chart is laid out at its first draw,
 * with every series it has by then and every layout change asked for before it, in one
 * `newPlot`: an empty `newPlot` followed by `addTraces` (and a `relayout` per change) laid it
 * out again each time, three to four times the work for a page whose points are all there.
 */

import { onThemeChange, theme, translucent } from "./theme.js";

/** @type {Set<LiveChart>} */
const dirty = new Set();
let frame = 0;

function schedule(chart) {
  dirty.add(chart);
  frame ||= requestAnimationFrame(drawDirtyChart);
}

/** The earlier of two charts on the page. */
function byPosition(a, b) {
  return a.node.compareDocumentPosition(b.node) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1;
}

/** Draw the highest dirty chart, and the next one in the next frame. */
function drawDirtyChart() {
  frame = 0;
  const [chart] = [...dirty].sort(byPosition);
  dirty.delete(chart);
  chart.draw();
  if (dirty.size) frame = requestAnimationFrame(drawDirtyChart);
}

const FEW_STEPS = 8;
/** On a narrow screen (a phone) Plotly's toolbar, shown once the chart is touched, gets a margin of its
 * own above the plot instead of covering its top. */
const NARROW = window.matchMedia("(max-width: 720px)");
const topMargin = () => (NARROW.matches ? 34 : 8);
const CONFIG = {
  displaylogo: false,
  responsive: true,
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
  toImageButtonOptions: { format: "png", scale: 2 },
};

/**
 * Lines with a dot per step (a series of one step is visible at all), thinned out by Plotly
 * once a series is long.
 */
export const LINE = { mode: "lines+markers", marker: { size: 4, maxdisplayed: 40 } };

/**
 * How a series is drawn. Plotly trace attributes, plus:
 * @typedef {object} SeriesStyle
 * @property {string} name  Legend entry.
 * @property {(t: import("./theme.js").Theme) => string} color
 * @property {number} [fillAlpha]  Fill the area under the line with the colour at this alpha.
 * @property {number} [legendrank]  Order in the legend (lower first).
 */

/** Layout attributes that follow the theme, as Plotly attribute paths. */
function themedLayout(t) {
  const axis = (name) => ({
    [`${name}.gridcolor`]: t.grid, [`${name}.linecolor`]: t.border, [`${name}.zerolinecolor`]: t.border,
    [`${name}.tickfont.color`]: t.muted, [`${name}.title.font.color`]: t.muted,
  });
  return {
    "font.color": t.text, "font.family": t.font, "legend.font.color": t.text,
    "hoverlabel.bgcolor": t.surface, "hoverlabel.bordercolor": t.border, "hoverlabel.font.color": t.text,
    ...axis("xaxis"), ...axis("yaxis"),
  };
}

/**
 * Set `obj[a][b][c] = value` for the attribute path "a.b.c" (array parts like "shapes[0]" included);
 * a null value removes the attribute, as it resets it in `Plotly.relayout`.
 */
function setPath(obj, path, value) {
  const parts = path.replace(/\[(\d+)\]/g, ".$1").split(".");
  let node = obj;
  parts.slice(0, -1).forEach((part, i) => { node = node[part] ??= /^\d+$/.test(parts[i + 1]) ? [] : {}; });
  if (value === null) delete node[parts.at(-1)];
  else node[parts.at(-1)] = value;
}

function colorAttributes(style, t) {
  const color = style.color(t);
  const attrs = { "line.color": color, "marker.color": color };
  if (style.fillAlpha) attrs.fillcolor = translucent(color, style.fillAlpha);
  return attrs;
}

export class LiveChart {
  /**
   * @param {HTMLElement} node  An element with `data-empty`, the text shown while nothing is drawn.
   * @param {object} options
   * @param {(id: string) => SeriesStyle | null} options.style  The style of series `id`; null: not drawn here.
   * @param {object} [options.layout]  Plotly layout (axis titles and types).
   * @param {(t: import("./theme.js").Theme) => object} [options.themed]  More theme-dependent layout, as attribute paths.
   */
  constructor(node, { style, layout = {}, themed = () => ({}) }) {
    this.node = node;
    this.styleOf = style;
    this.themed = themed;
    /** @type {Map<string, {style: SeriesStyle, points: Map<number, [number, string]>, index: number, last: number, tail: [number, number, string][], rewrite: boolean}>} */
    this.series = new Map();
    this.traces = 0;
    this.firstStep = Infinity;
    this.lastStep = -Infinity;
    this.fewSteps = false; // Plotly's own ticks, as laid out
    this.ready = false; // laid out by Plotly
    this.laying = false; // its `newPlot` called, not yet done
    const t = theme();
    const base = {
      margin: { t: topMargin(), r: 12, b: 40, l: 52 },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: { size: 12 },
      hovermode: "x unified", uirevision: "keep",
      legend: { orientation: "h", x: 0, y: -0.18, yanchor: "top", bgcolor: "rgba(0,0,0,0)" },
      // Labels that would overlap tilt by 30 degrees at most, never stand upright.
      xaxis: { title: { text: "epoch", standoff: 6 }, tickformat: "d", zeroline: false, automargin: true, autotickangles: [0, 30] },
      yaxis: { automargin: true, autotickangles: [0, 30] },
    };
    const merged = structuredClone(layout);
    for (const [key, value] of Object.entries(base)) {
      merged[key] = typeof value === "object" && !Array.isArray(value) ? { ...value, ...merged[key] } : merged[key] ?? value;
    }
    for (const [path, value] of Object.entries({ ...themedLayout(t), ...this.themed(t) })) setPath(merged, path, value);
    node.dataset.state = "empty";
    /** The layout of the first draw, until then changed in place by `relayout` and `repaint`. */
    this.layout = merged;
    this.plotted = new Promise((resolve) => { this.resolvePlotted = resolve; });
    schedule(this); // laid out in a frame even if it never gets a point
    onThemeChange((next) => this.repaint(next));
    NARROW.addEventListener("change", () => this.relayout({ "margin.t": topMargin() }));
  }

  /** Whether any point has been set. */
  get empty() {
    for (const series of this.series.values()) if (series.points.size) return false;
    return true;
  }

  /**
   * Record the value of series `id` at `step` (a later value for the same step replaces the earlier one).
   * @returns {boolean} Whether this chart draws series `id`.
   */
  set(id, step, value, text = "") {
    if (!Number.isFinite(value) || !Number.isFinite(step)) return this.series.has(id);
    let series = this.series.get(id);
    if (!series) {
      const style = this.styleOf(id);
      if (!style) return false;
      series = { style, points: new Map(), index: -1, last: -Infinity, tail: [], rewrite: false };
      this.series.set(id, series);
    }
    const previous = series.points.get(step);
    if (previous && previous[0] === value && previous[1] === text) return true;
    series.points.set(step, [value, text]);
    if (step > series.last) series.tail.push([step, value, text]);
    else series.rewrite = true;
    series.last = Math.max(series.last, step);
    this.firstStep = Math.min(this.firstStep, step);
    this.lastStep = Math.max(this.lastStep, step);
    schedule(this);
    return true;
  }

  /** Remove every series (the compare page, when another metric is chosen). */
  clear() {
    if (this.traces) window.Plotly.deleteTraces(this.node, [...Array(this.traces).keys()]);
    this.series.clear();
    this.traces = 0;
    this.firstStep = Infinity;
    this.lastStep = -Infinity;
    this.node.dataset.state = "empty";
  }

  /** Draw what changed since the last frame (the first time, lay the chart out with it). */
  draw() {
    if (this.laying) return; // drawn again once laid out
    const Plotly = window.Plotly;
    const t = theme();
    const added = [];
    const rewritten = { x: [], y: [], text: [] };
    const rewrittenIndices = [];
    const extended = { x: [], y: [], text: [] };
    const extendedIndices = [];
    for (const series of this.series.values()) {
      if (series.index < 0) {
        const [x, y, text] = sortedColumns(series.points);
        const { color: _color, fillAlpha: _alpha, ...attrs } = series.style;
        const trace = { type: "scatter", ...structuredClone(attrs), x, y, text }; // styles share nested objects
        for (const [path, value] of Object.entries(colorAttributes(series.style, t))) setPath(trace, path, value);
        added.push(trace);
        series.index = this.traces + added.length - 1;
      } else if (series.rewrite) {
        const [x, y, text] = sortedColumns(series.points);
        rewritten.x.push(x);
        rewritten.y.push(y);
        rewritten.text.push(text);
        rewrittenIndices.push(series.index);
      } else if (series.tail.length) {
        extended.x.push(series.tail.map((p) => p[0]));
        extended.y.push(series.tail.map((p) => p[1]));
        extended.text.push(series.tail.map((p) => p[2]));
        extendedIndices.push(series.index);
      }
      series.tail = [];
      series.rewrite = false;
    }
    // Ticks before the points: Plotly must never lay out a wide range with a tick per step.
    const ticks = this.tickEveryEpoch();
    if (!this.ready) {
      this.layOut(added, ticks);
      return;
    }
    if (ticks) Plotly.relayout(this.node, ticks);
    if (added.length) {
      Plotly.addTraces(this.node, added);
      this.traces += added.length;
    }
    if (rewrittenIndices.length) Plotly.restyle(this.node, rewritten, rewrittenIndices);
    if (extendedIndices.length) Plotly.extendTraces(this.node, extended, extendedIndices);
    this.node.dataset.state = this.empty ? "empty" : "drawn";
  }

  /** The first draw: one `newPlot` with the chart's series, its layout changes and its ticks. */
  layOut(traces, ticks) {
    for (const [path, value] of Object.entries(ticks ?? {})) setPath(this.layout, path, value);
    this.laying = true;
    this.traces = traces.length;
    window.Plotly.newPlot(this.node, traces, this.layout, CONFIG).then(() => {
      this.laying = false;
      this.ready = true;
      this.layout = null;
      this.node.dataset.state = this.empty ? "empty" : "drawn";
      this.resolvePlotted();
      schedule(this); // what was set meanwhile
    });
  }

  /**
   * The layout change that gives a tick per step while the steps are few (Plotly would otherwise
   * label 2.5 as "3"), else and before any point Plotly's own (a logged run may start at step
   * 100000); null when the ticks are already so.
   */
  tickEveryEpoch() {
    const few = this.lastStep >= this.firstStep && this.lastStep - this.firstStep < FEW_STEPS;
    if (few === this.fewSteps) return null;
    this.fewSteps = few;
    return few
      ? { "xaxis.tickmode": "linear", "xaxis.tick0": 0, "xaxis.dtick": 1 }
      : { "xaxis.tickmode": "auto", "xaxis.tick0": null, "xaxis.dtick": null };
  }

  /** Change the layout (e.g. the threshold line once the run's tau is known), as attribute paths. */
  relayout(update) {
    if (this.laying) this.plotted.then(() => window.Plotly.relayout(this.node, update));
    else if (this.ready) window.Plotly.relayout(this.node, update);
    else for (const [path, value] of Object.entries(update)) setPath(this.layout, path, value);
  }

  repaint(t) {
    if (this.laying) {
      this.plotted.then(() => this.repaint(t));
      return;
    }
    if (!this.ready) { // the first draw takes its series' colours from the theme, its layout's from here
      this.relayout({ ...themedLayout(t), ...this.themed(t) });
      return;
    }
    window.Plotly.relayout(this.node, { ...themedLayout(t), ...this.themed(t) });
    const drawn = [...this.series.values()].filter((series) => series.index >= 0);
    if (!drawn.length) return;
    const update = {};
    for (const series of drawn) {
      for (const [path, value] of Object.entries(colorAttributes(series.style, t))) {
        (update[path] ??= Array(drawn.length).fill(null))[drawn.indexOf(series)] = value;
      }
    }
    window.Plotly.restyle(this.node, update, drawn.map((series) => series.index));
  }
}

/** `[steps, values, texts]` of a series, in step order. */
function sortedColumns(points) {
  const steps = [...points.keys()].sort((a, b) => a - b);
  return [steps, steps.map((s) => points.get(s)[0]), steps.map((s) => points.get(s)[1])];
}

/** Text for Plotly labels, which read a little HTML: user-supplied names must not be read as markup. */
export function plotlyText(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
