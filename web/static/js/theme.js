/**
 * Chart colours, read from the stylesheet's custom properties so that charts
 * follow the system's light or dark preference exactly as the page does.
 */

const dark = window.matchMedia("(prefers-color-scheme: dark)");

/** How many series colours the stylesheet defines (`--series-1` to `--series-6`); past them, colours repeat. */
export const PALETTE_SIZE = 6;

/**
 * A dataset's modalities in one fixed order: its default pair first, then the others as the
 * catalogue lists them, then names the catalogue does not know (a folder's), alphabetically.
 * A modality's colour is its place here, so it keeps its colour on every run and page,
 * whatever order a run names its modalities in.
 * @param {object | null} catalog  The API's catalogue.
 * @param {string | null} dataset
 * @param {string[]} names  The run's modalities.
 */
export function modalityOrder(catalog, dataset, names = []) {
  const entry = catalog?.datasets.find((d) => d.name === dataset);
  const order = [...new Set(entry ? [...entry.default_modalities, ...Object.keys(entry.modalities)] : [])];
  order.push(...names.filter((name) => !order.includes(name)).sort());
  return order;
}

/** Series colour `index` (from 0, wrapping around the palette) as a CSS value, for `element.style`. */
export function seriesColor(index) {
  return `var(--series-${(index % PALETTE_SIZE) + 1})`;
}

/**
 * @typedef {object} Theme
 * @property {string} text
 * @property {string} muted
 * @property {string} grid
 * @property {string} border
 * @property {string} surface
 * @property {string} fused  Colour of the fused head.
 * @property {string} gap    Colour of the utilization gap.
 * @property {string} tau    Colour of the threshold line.
 * @property {string[]} series  Colours of modalities (and of runs on the compare page).
 * @property {string} font
 */

/** @returns {Theme} */
export function theme() {
  const style = getComputedStyle(document.documentElement);
  const read = (name) => style.getPropertyValue(name).trim();
  return {
    text: read("--text"), muted: read("--muted"), grid: read("--grid"), border: read("--border"),
    surface: read("--surface"), fused: read("--fused"), gap: read("--gap"), tau: read("--tau"),
    series: Array.from({ length: PALETTE_SIZE }, (_, i) => read(`--series-${i + 1}`)),
    font: read("--font-sans"),
  };
}

/** `color` (#rrggbb) at `alpha`, for area fills. */
export function translucent(color, alpha) {
  const match = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (!match) return color;
  const [r, g, b] = match.slice(1).map((part) => parseInt(part, 16));
  return `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

/** Call `listener(theme())` whenever the system switches between light and dark. */
export function onThemeChange(listener) {
  dark.addEventListener("change", () => listener(theme()));
}
