/** Mean and spread over seeds, for the tables of results. */

/** The arithmetic mean; NaN for no values. */
export function mean(values) {
  return values.length ? values.reduce((sum, v) => sum + v, 0) / values.length : NaN;
}

/**
 * The sample standard deviation (divided by n - 1, as papers report spread over seeds);
 * NaN below two values, where there is no spread to estimate.
 */
export function std(values) {
  if (values.length < 2) return NaN;
  const m = mean(values);
  return Math.sqrt(values.reduce((sum, v) => sum + (v - m) ** 2, 0) / (values.length - 1));
}

/**
 * @param {number[]} values  Non-finite values are left out.
 * @returns {{n: number, mean: number, std: number}}
 */
export function describe(values) {
  const finite = values.filter(Number.isFinite);
  return { n: finite.length, mean: mean(finite), std: std(finite) };
}

/**
 * Items grouped by `key(item)`, groups in order of first appearance.
 * @template T
 * @param {T[]} items
 * @param {(item: T) => string} key
 * @returns {Map<string, T[]>}
 */
export function groupBy(items, key) {
  const groups = new Map();
  for (const item of items) {
    const k = key(item);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(item);
  }
  return groups;
}
