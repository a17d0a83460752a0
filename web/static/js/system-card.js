/**
 * The run page's System card: what the run's worker sampled every MILES_SYSTEM_INTERVAL seconds
 * (the `sys/...` keys, whose step is seconds since the run started), drawn live.
 *
 * - the latest readings: CPU, resident memory, GPU utilization, GPU memory, temperature, power and
 *   throughput (peak memory beside the current);
 * - utilization (CPU of the process, in percent of one core, and GPU) and throughput over time.
 */

import { byId, h } from "./dom.js";
import { LINE, LiveChart } from "./charts.js";
import * as fmt from "./format.js";

export const SYSTEM_PREFIX = "sys/";

/** Whether a metric key is a system metric (seconds since the start, not epochs). */
export function isSystem(key) {
  return key.startsWith(SYSTEM_PREFIX);
}

const FACTS = [
  ["sys/cpu_percent", "CPU", (v) => `${fmt.number(Math.round(v))} %`],
  ["sys/memory_mib", "Memory", mebibytes],
  ["sys/gpu_util_percent", "GPU", (v) => `${Math.round(v)} %`],
  ["sys/gpu_memory_mib", "GPU memory", mebibytes],
  ["sys/gpu_temperature_c", "GPU temperature", (v) => `${Math.round(v)} °C`],
  ["sys/gpu_power_w", "GPU power", (v) => `${Math.round(v)} W`],
  ["sys/samples_per_s", "Throughput", (v) => `${fmt.number(Math.round(v))} samples/s`],
];
const PEAKS = new Set(["sys/memory_mib", "sys/gpu_memory_mib"]);

function mebibytes(value) {
  return value >= 1024 ? `${(value / 1024).toFixed(2)} GiB` : `${Math.round(value)} MiB`;
}

const TIME_AXIS = { xaxis: { title: { text: "seconds since the run started", standoff: 6 }, tickformat: "d" } };

export class SystemCard {
  constructor() {
    /** key -> [second, value] of the latest sample, and the peak of the memory keys */
    this.latest = new Map();
    this.peak = new Map();
    this.utilization = new LiveChart(byId("chart-system-util"), {
      layout: { ...TIME_AXIS, yaxis: { title: { text: "percent" }, rangemode: "tozero" } },
      style: (id) => {
        if (id === "sys/cpu_percent") {
          return { ...LINE, name: "CPU (of one core)", color: (t) => t.series[0], hovertemplate: "CPU %{y:.0f} %<extra></extra>" };
        }
        if (id === "sys/gpu_util_percent") {
          return { ...LINE, name: "GPU", color: (t) => t.series[1], hovertemplate: "GPU %{y:.0f} %<extra></extra>" };
        }
        return null;
      },
    });
    this.throughput = new LiveChart(byId("chart-system-throughput"), {
      layout: { ...TIME_AXIS, yaxis: { title: { text: "training samples / s" }, rangemode: "tozero" } },
      style: (id) => (id === "sys/samples_per_s"
        ? { ...LINE, name: "throughput", color: (t) => t.series[2], hovertemplate: "%{y:.0f} samples/s<extra></extra>" }
        : null),
    });
  }

  /** One point of a `sys/` key at `second`. */
  addPoint(key, second, value) {
    if (!Number.isFinite(value)) return;
    const last = this.latest.get(key);
    if (!last || second >= last[0]) this.latest.set(key, [second, value]);
    if (PEAKS.has(key)) this.peak.set(key, Math.max(this.peak.get(key) ?? -Infinity, value));
    this.utilization.set(key, second, value) || this.throughput.set(key, second, value);
    this.showFactsSoon();
  }

  /** A `system` message of the stream: every key of one sample. */
  addSample(second, metrics) {
    for (const [key, value] of Object.entries(metrics)) this.addPoint(key, second, value);
  }

  showFactsSoon() {
    this.frame ||= requestAnimationFrame(() => {
      this.frame = 0;
      this.showFacts();
    });
  }

  showFacts() {
    const items = FACTS.filter(([key]) => this.latest.has(key)).map(([key, label, show]) => {
      const value = this.latest.get(key)[1];
      const peak = PEAKS.has(key) ? h("span", { class: "sub" }, `peak ${show(this.peak.get(key))}`) : null;
      return h("div", { dataset: { key } }, h("span", { class: "sub" }, label), h("strong", {}, show(value)), peak);
    });
    const newest = Math.max(...[...this.latest.values()].map(([second]) => second));
    byId("system-facts").replaceChildren(...items);
    byId("system-note").textContent = items.length
      ? `Latest sample ${fmt.duration(newest)} after the start.`
      : "Sampled by the run's worker while it trains.";
  }
}
