// Small inline-SVG charts (no libraries): stacked bars per minute and a line with gaps.

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

function frame(host, { height, yMax, yFormat, xLabels, label }) {
  const width = Math.max(240, Math.round(host.clientWidth || 480));
  const pad = { left: 40, right: 8, top: 10, bottom: 20 };
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", height, role: "img",
    "aria-label": label, class: "chart" });
  const plot = { x: pad.left, y: pad.top, w: width - pad.left - pad.right, h: height - pad.top - pad.bottom };
  for (const fraction of [0, 0.5, 1]) {
    const y = plot.y + plot.h * (1 - fraction);
    root.append(svg("line", { x1: plot.x, x2: plot.x + plot.w, y1: y, y2: y, class: "grid" }));
    root.append(svg("text", { x: plot.x - 6, y: y + 4, "text-anchor": "end", class: "axis" },
      yFormat(yMax * fraction)));
  }
  xLabels.forEach(([fraction, text], index) => {
    const anchor = index === 0 ? "start" : index === xLabels.length - 1 ? "end" : "middle";
    root.append(svg("text", { x: plot.x + plot.w * fraction, y: height - 4, "text-anchor": anchor,
      class: "axis" }, text));
  });
  return { root, plot };
}

/**
 * Stacked bars: points = [{label, values: [a, b, ...]}], classes = css class per stack part.
 * Each bar carries a <title> so hovering shows the numbers.
 */
export function stackedBars(host, points, { classes, height = 150, label, xLabels, describe }) {
  const total = (p) => p.values.reduce((sum, v) => sum + (v || 0), 0);
  const yMax = niceMax(Math.max(0, ...points.map(total)));
  const { root, plot } = frame(host, { height, yMax, yFormat: (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1)), xLabels, label });
  const slot = plot.w / Math.max(1, points.length);
  const barWidth = Math.max(1, slot - Math.min(3, slot * 0.25));
  points.forEach((point, index) => {
    let base = plot.y + plot.h;
    const group = svg("g", { class: "bar-group" });
    group.append(svg("title", {}, describe(point)));
    // A transparent full-height rect makes the tooltip easy to hit on empty minutes too.
    group.append(svg("rect", { x: plot.x + index * slot, y: plot.y, width: slot, height: plot.h,
      class: "hit" }));
    point.values.forEach((value, part) => {
      if (!value) return;
      const barHeight = (value / yMax) * plot.h;
      base -= barHeight;
      group.append(svg("rect", { x: plot.x + index * slot + (slot - barWidth) / 2, y: base,
        width: barWidth, height: barHeight, class: classes[part], rx: Math.min(2, barWidth / 3) }));
    });
    root.append(group);
  });
  host.replaceChildren(root);
}

/** A line over points [{label, value|null}]; null values leave gaps; dots mark single points. */
export function lineChart(host, points, { cls = "line", height = 150, label, xLabels, yFormat, describe }) {
  const values = points.map((p) => p.value).filter((v) => v !== null && v !== undefined);
  const yMax = niceMax(Math.max(0, ...values));
  const { root, plot } = frame(host, { height, yMax, yFormat, xLabels, label });
  const slot = plot.w / Math.max(1, points.length);
  const xy = (index, value) => [plot.x + slot * (index + 0.5), plot.y + plot.h * (1 - value / yMax)];
  let path = "";
  points.forEach((point, index) => {
    if (point.value === null || point.value === undefined) return;
    const [x, y] = xy(index, point.value);
    const previous = points[index - 1];
    path += `${previous && previous.value !== null && previous.value !== undefined ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)} `;
  });
  if (path) root.append(svg("path", { d: path.trim(), class: cls }));
  points.forEach((point, index) => {
    const group = svg("g", { class: "bar-group" });
    group.append(svg("title", {}, describe(point)));
    group.append(svg("rect", { x: plot.x + index * slot, y: plot.y, width: slot, height: plot.h, class: "hit" }));
    if (point.value !== null && point.value !== undefined) {
      const [x, y] = xy(index, point.value);
      group.append(svg("circle", { cx: x, cy: y, r: 2.5, class: `${cls}-dot` }));
    }
    root.append(group);
  });
  host.replaceChildren(root);
}

/** A tiny bar chart without axes (one per worker): values oldest first; the label names it for screen readers. */
export function sparkBars(host, values, { label, width = 120, height = 26, describe = (v) => String(v) }) {
  const yMax = Math.max(1, ...values);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label,
    class: "chart spark" });
  const slot = width / Math.max(1, values.length);
  values.forEach((value, index) => {
    const barHeight = Math.max(value ? 2 : 1, (value / yMax) * (height - 2));
    const rect = svg("rect", { x: index * slot + 1, y: height - barHeight, width: Math.max(1, slot - 2),
      height: barHeight, class: value ? "done" : "grid" });
    rect.append(svg("title", {}, describe(value, index)));
    root.append(rect);
  });
  host.replaceChildren(root);
}
