/** How numbers, times and names read on every page. */

const DASH = "—";

/** A metric or utilization value: 0.953; "—" when unknown. */
export function metric(value, digits = 3) {
  return Number.isFinite(value) ? value.toFixed(digits) : DASH;
}

/** A learning rate: 5.0e-4. */
export function rate(value) {
  return Number.isFinite(value) ? value.toExponential(1) : DASH;
}

/** A general number without noise: 1000, 0.001, 2.5e-7. */
export function number(value) {
  if (!Number.isFinite(value)) return DASH;
  if (value !== 0 && (Math.abs(value) < 1e-3 || Math.abs(value) >= 1e6)) return value.toExponential(2);
  return String(Number(value.toPrecision(6)));
}

/** "12 s", "3 min 05 s", "1 h 02 min". */
export function duration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return DASH;
  if (seconds < 9.95) return `${seconds.toFixed(1)} s`;
  // Whole seconds first, so that 119.6 s reads "2 min 00 s" rather than "1 min 60 s".
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole} s`;
  const minutes = Math.floor(whole / 60);
  if (minutes < 60) return `${minutes} min ${String(whole % 60).padStart(2, "0")} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

/** Seconds between two ISO timestamps (the second defaults to now). */
export function secondsBetween(start, end = null) {
  if (!start) return NaN;
  return ((end ? Date.parse(end) : Date.now()) - Date.parse(start)) / 1000;
}

const RELATIVE = new Intl.RelativeTimeFormat(undefined, { numeric: "auto", style: "short" });
// The formats of toLocaleDateString, toLocaleString and toLocaleTimeString, made once: each of those
// calls builds its formatter anew, and a run page formats two times per event before its first chart.
const DATE = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "numeric", day: "numeric" });
const DATE_TIME = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric",
});
const CLOCK = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "numeric", second: "numeric", hour12: false });

/** "just now", "5 min. ago", "3 days ago", then the date. */
export function age(iso) {
  const seconds = secondsBetween(iso);
  if (!Number.isFinite(seconds)) return DASH;
  if (seconds < 45) return "just now";
  if (seconds < 3600) return RELATIVE.format(-Math.round(seconds / 60), "minute");
  if (seconds < 86400) return RELATIVE.format(-Math.round(seconds / 3600), "hour");
  if (seconds < 30 * 86400) return RELATIVE.format(-Math.round(seconds / 86400), "day");
  return DATE.format(new Date(iso));
}

/** A full local date and time. */
export function dateTime(iso) {
  return iso ? DATE_TIME.format(new Date(iso)) : DASH;
}

/** Hours, minutes and seconds of a timestamp, for logs. */
export function clock(iso) {
  return iso ? CLOCK.format(new Date(iso)) : "";
}

export const STATUS_LABELS = {
  queued: "Queued", running: "Running", succeeded: "Succeeded", failed: "Failed", cancelled: "Cancelled",
  pruned: "Pruned",
};
export const ACTIVE = new Set(["queued", "running"]);

/** The name of the metric of a task: accuracy for single-label tasks, F1 for multilabel ones. */
export function metricName(task) {
  return task === "multilabel" ? "F1" : "accuracy";
}

/** "strong + weak" */
export function modalities(list) {
  return list?.length ? list.join(" + ") : DASH;
}

export { DASH };
