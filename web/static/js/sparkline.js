/**
 * Small line charts drawn as inline SVG (no Plotly): a few dozen points, redrawn every poll.
 */

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

/**
 * A sparkline of one or more series sharing an x axis and a y range from 0.
 * @param {{values: (number|null)[], className: string}[]} lines  One entry per line; null leaves a gap.
 * @param {{width?: number, height?: number, max?: number, label?: string}} [options]  `max`: the top of the
 *   y range at least (e.g. 100 for percentages); `label`: the accessible description.
 * @returns {SVGSVGElement}
 */
export function sparkline(lines, { width = 120, height = 28, max = 1, label = "" } = {}) {
  const chart = svg("svg", { class: "sparkline", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  if (label) chart.append(Object.assign(svg("title"), { textContent: label }));
  const count = Math.max(0, ...lines.map((line) => line.values.length));
  const top = Math.max(max, ...lines.flatMap((line) => line.values.filter(Number.isFinite)));
  const x = (i) => (count > 1 ? (i / (count - 1)) * (width - 2) + 1 : width / 2);
  const y = (v) => height - 1 - (v / top) * (height - 2);
  for (const line of lines) {
    let path = "";
    let pen = "M";
    line.values.forEach((value, i) => {
      if (!Number.isFinite(value)) {
        pen = "M";
        return;
      }
      path += `${pen}${x(i).toFixed(1)},${y(value).toFixed(1)} `;
      pen = "L";
    });
    if (path) chart.append(svg("path", { d: path.trim(), class: line.className }));
  }
  return chart;
}
