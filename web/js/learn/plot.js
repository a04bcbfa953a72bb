// SVG helpers for the /learn page's plots: building elements, a linear map from data to the plot's
// box, axes with ticks, and where a pointer event falls in data coordinates.
export const SVG = "http://www.w3.org/2000/svg";

// svg("line", {x1: 0, ...}, parent): an SVG element (null/undefined attributes left out).
export function svg(name, attributes = {}, parent = null) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined) element.setAttribute(key, String(value));
  }
  if (parent) parent.appendChild(element);
  return element;
}

// A plot box of `width` x `height` units with `margin` around it, showing x in xRange and y in yRange.
export class Frame {
  constructor({ width, height, margin, xRange, yRange }) {
    Object.assign(this, { width, height, margin, xRange, yRange });
  }

  x(value) {
    const [lo, hi] = this.xRange;
    return this.margin + ((value - lo) / (hi - lo)) * (this.width - 2 * this.margin);
  }

  y(value) {
    const [lo, hi] = this.yRange;
    return this.height - this.margin - ((value - lo) / (hi - lo)) * (this.height - 2 * this.margin);
  }

  // a plot position back to data
  fromX(px) {
    const [lo, hi] = this.xRange;
    return lo + ((px - this.margin) / (this.width - 2 * this.margin)) * (hi - lo);
  }

  fromY(py) {
    const [lo, hi] = this.yRange;
    return lo + ((this.height - this.margin - py) / (this.height - 2 * this.margin)) * (hi - lo);
  }

  // "x,y x,y ..." for a polyline through the data points, y clamped to the box (a diverging fit stays drawable)
  points(xs, ys) {
    const [lo, hi] = this.yRange;
    const pad = (hi - lo) * 0.05;
    return Array.from(xs, (x, i) => {
      const y = Math.min(hi + pad, Math.max(lo - pad, ys[i]));
      return `${this.x(x).toFixed(1)},${this.y(y).toFixed(1)}`;
    }).join(" ");
  }

  // The box, the zero lines and labelled ticks (every `step` on each axis), into `parent`.
  axes(parent, { xStep, yStep, xLabel, yLabel }) {
    const group = svg("g", { class: "axes", "aria-hidden": "true" }, parent);
    const [x0, x1] = this.xRange;
    const [y0, y1] = this.yRange;
    svg("rect", { x: this.x(x0), y: this.y(y1), width: this.x(x1) - this.x(x0), height: this.y(y0) - this.y(y1), class: "plot-box" }, group);
    for (let v = Math.ceil(x0 / xStep) * xStep; v <= x1 + 1e-9; v += xStep) {
      svg("line", { x1: this.x(v), y1: this.y(y0), x2: this.x(v), y2: this.y(y1), class: v === 0 ? "zero" : "grid" }, group);
      svg("text", { x: this.x(v), y: this.y(y0) + 14, class: "tick middle" }, group).textContent = formatTick(v);
    }
    for (let v = Math.ceil(y0 / yStep) * yStep; v <= y1 + 1e-9; v += yStep) {
      svg("line", { x1: this.x(x0), y1: this.y(v), x2: this.x(x1), y2: this.y(v), class: v === 0 ? "zero" : "grid" }, group);
      svg("text", { x: this.x(x0) - 5, y: this.y(v) + 4, class: "tick end" }, group).textContent = formatTick(v);
    }
    if (xLabel) svg("text", { x: this.x(x1), y: this.y(y0) - 6, class: "axis-label end" }, group).textContent = xLabel;
    if (yLabel) svg("text", { x: this.x(x0) + 6, y: this.y(y1) + 14, class: "axis-label" }, group).textContent = yLabel;
    return group;
  }
}

const formatTick = (v) => (Math.abs(v) < 1e-9 ? "0" : String(Math.round(v * 100) / 100).replace("-", "\u2212"));

// Where a pointer event falls, in the SVG's own units.
export function eventPoint(element, event) {
  const matrix = element.getScreenCTM();
  if (!matrix) return null;
  const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
  return [point.x, point.y];
}

// A number for reading: 3 significant digits, a true minus sign.
export function formatNumber(value, digits = 3) {
  if (!Number.isFinite(value)) return "\u2013";
  const abs = Math.abs(value);
  const text = abs >= 1000 || (abs > 0 && abs < 0.001) ? value.toExponential(digits - 1) : value.toPrecision(digits);
  return text.replace("-", "\u2212");
}
