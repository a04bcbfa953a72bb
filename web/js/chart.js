// A small live chart of the loss at each adaptation step (SVG, no library).
const SVG = "http://www.w3.org/2000/svg";
const W = 240;
const H = 72;
const PAD = 4;

function node(name, attributes = {}, parent = null) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (parent) parent.appendChild(element);
  return element;
}

export class LossChart {
  constructor(container) {
    this.svg = node("svg", { viewBox: `0 0 ${W} ${H}`, class: "loss-chart", role: "img", "aria-label": "Loss per adaptation step: none yet" });
    node("line", { x1: PAD, y1: H - PAD, x2: W - PAD, y2: H - PAD, class: "axis" }, this.svg);
    node("line", { x1: PAD, y1: PAD, x2: PAD, y2: H - PAD, class: "axis" }, this.svg);
    this.lines = {
      compare: node("polyline", { class: "loss compare", points: "" }, this.svg),
      meta: node("polyline", { class: "loss meta", points: "" }, this.svg),
    };
    this.labelTop = node("text", { x: PAD + 3, y: PAD + 9, class: "chart-label" }, this.svg);
    this.labelEnd = node("text", { x: W - PAD - 2, y: H - PAD - 4, class: "chart-label end" }, this.svg);
    container.appendChild(this.svg);
    this.reset(1);
  }

  reset(steps) {
    this.steps = Math.max(1, steps);
    this.data = { meta: [], compare: [] };
    this.max = 0;
    this.draw();
  }

  add(which, k, loss) {
    if (!this.data[which]) return;
    this.data[which][k] = loss;
    if (loss > this.max) this.max = loss;
    this.draw();
  }

  set(which, losses) {
    this.data[which] = losses.slice();
    this.max = Math.max(0, ...this.data.meta, ...this.data.compare);
    this.draw();
  }

  draw() {
    const xOf = (k) => PAD + ((W - 2 * PAD) * k) / Math.max(1, this.steps - 1);
    // log scale: a comparison start's loss is many times the meta-learned one's, and both stay readable
    const yOf = (v) => H - PAD - ((H - 2 * PAD - 10) * Math.log1p(v)) / (Math.log1p(this.max) || 1);
    for (const [which, line] of Object.entries(this.lines)) {
      line.setAttribute("points", this.data[which].map((v, k) => `${xOf(k).toFixed(1)},${yOf(v).toFixed(1)}`).join(" "));
    }
    const meta = this.data.meta.filter((v) => v !== undefined);
    this.labelTop.textContent = this.max ? `loss ${this.max.toFixed(2)}` : "loss";
    this.labelEnd.textContent = meta.length ? `step ${meta.length}: ${meta[meta.length - 1].toFixed(3)}` : "";
    const label = meta.length
      ? `Loss per adaptation step: ${meta[0].toFixed(3)} at step 1, ${meta[meta.length - 1].toFixed(3)} at step ${meta.length}`
      : "Loss per adaptation step: none yet";
    this.svg.setAttribute("aria-label", label);
  }
}
