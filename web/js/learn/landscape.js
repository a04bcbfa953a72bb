// Reptile in parameter space on /learn: a plot named "Parameter space" with four tasks' solution lines,
// the point closest to all of them (a star), where the chosen algorithm settles on average (a ring),
// and the start phi, which the pointer drags and the arrow keys move. "Run" animates iterations of
// Reptile, joint training or MAML (landscape_math.js has the exact math).
import { yieldToEvents } from "../engine.js";
import { TASKS, closestPoint, distance, settlingPoint, update } from "./landscape_math.js";
import { Frame, eventPoint, formatNumber, svg } from "./plot.js";
import { seededRandom } from "./random.js";
import { DEFAULTS, LIMITS } from "./url_state.js";

const FRAME = new Frame({ width: 420, height: 420, margin: 28, xRange: LIMITS.phi, yRange: LIMITS.phi });
const RUN_ITERATIONS = 40;
const FRAME_MS = 70; // one iteration a frame of the animation
const KEY_STEP = 0.1; // the arrow keys move phi this far (x 5 with Shift)
const TRAIL = 400; // the last positions of phi drawn
export const RUN_LABELS = { reptile: "Run Reptile", joint: "Run joint training", maml: "Run MAML" };
const NAMES = { reptile: "Reptile", joint: "joint training", maml: "MAML" };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const clamp = (v, [lo, hi]) => Math.min(hi, Math.max(lo, v));
const fmt = ([x, y]) => `(${formatNumber(x, 2)}, ${formatNumber(y, 2)})`;

// The segment of the line a . p = b inside the square [lo, hi]^2 -> [[x, y], [x, y]] or null.
function clipLine({ a, b }, [lo, hi]) {
  const ends = [];
  for (const edge of [lo, hi]) {
    if (a[1] !== 0) ends.push([edge, (b - a[0] * edge) / a[1]]);
    if (a[0] !== 0) ends.push([(b - a[1] * edge) / a[0], edge]);
  }
  const inside = ends.filter(([x, y]) => x >= lo - 1e-9 && x <= hi + 1e-9 && y >= lo - 1e-9 && y <= hi + 1e-9);
  if (inside.length < 2) return null;
  inside.sort((p, q) => p[0] - q[0] || p[1] - q[1]);
  return [inside[0], inside[inside.length - 1]];
}

// A five-pointed star's points around (cx, cy).
function star(cx, cy, outer, inner) {
  return Array.from({ length: 10 }, (_, i) => {
    const r = i % 2 ? inner : outer;
    const angle = -Math.PI / 2 + (i * Math.PI) / 5;
    return `${(cx + r * Math.cos(angle)).toFixed(1)},${(cy + r * Math.sin(angle)).toFixed(1)}`;
  }).join(" ");
}

export class LandscapePart {
  // section: the part's <section>; state: the page's state (algorithm, k, innerStep, metaStep, phi;
  // changed here); onChange(): the state changed; announce(text): the live region.
  constructor(section, { state, onChange, announce }) {
    Object.assign(this, { section, state, onChange, announce });
    this.random = seededRandom(1); // the sampled tasks: the same sequence for everyone
    this.closest = closestPoint(TASKS);
    this.iterations = 0;
    this.running = 0; // the id of the running animation, 0 when none
    this.trail = [state.phi];
    this.inner = [];
    const $ = (id) => section.querySelector(`#${id}`);
    this.readout = $("landscape-readout");
    this.runButton = $("landscape-run");
    this.algorithm = $("landscape-algorithm");
    this.sliders = {
      k: [$("landscape-k"), $("landscape-k-value"), (v) => String(v)],
      innerStep: [$("landscape-inner-step"), $("landscape-inner-step-value"), (v) => v.toFixed(2)],
      metaStep: [$("landscape-meta-step"), $("landscape-meta-step-value"), (v) => v.toFixed(2)],
    };
    for (const [key, [input]] of Object.entries(this.sliders)) {
      [input.min, input.max] = LIMITS[key].map(String);
      input.value = String(state[key]);
      input.addEventListener("input", () => {
        state[key] = Number(input.value);
        this.draw();
        onChange();
      });
    }
    this.algorithm.value = state.algorithm;
    this.algorithm.addEventListener("change", () => {
      state.algorithm = this.algorithm.value;
      this.draw();
      onChange();
    });
    this.runButton.addEventListener("click", () => this.run());
    $("landscape-step").addEventListener("click", () => {
      this.stop();
      this.iterate();
      this.announceState();
    });
    $("landscape-reset").addEventListener("click", () => {
      this.stop();
      this.iterations = 0;
      this.lastTask = null;
      this.moveTo(DEFAULTS.phi);
      this.announceState();
    });
    this.buildPlot($("landscape-plot"));
    this.draw();
  }

  buildPlot(container) {
    this.plot = svg("svg", { viewBox: `0 0 ${FRAME.width} ${FRAME.height}`, class: "plot landscape-plot", role: "application",
      "aria-label": "Parameter space", "aria-roledescription": "plot", "aria-describedby": "landscape-help landscape-readout", tabindex: 0 });
    FRAME.axes(this.plot, { xStep: 1, yStep: 1, xLabel: "\u03c6\u2081", yLabel: "\u03c6\u2082" });
    TASKS.forEach((task, i) => {
      const segment = clipLine(task, LIMITS.phi);
      if (!segment) return;
      const [[x1, y1], [x2, y2]] = segment;
      svg("line", { x1: FRAME.x(x1), y1: FRAME.y(y1), x2: FRAME.x(x2), y2: FRAME.y(y2), class: `manifold task-${i + 1}`,
        "stroke-width": (1 + 1.6 * Math.hypot(...task.a)).toFixed(1) }, this.plot); // steeper loss, thicker line
      const label = [x1 + 0.85 * (x2 - x1), y1 + 0.85 * (y2 - y1)]; // near the right end: the labels stay apart
      svg("text", { x: FRAME.x(label[0]) + 6, y: FRAME.y(label[1]) - 6, class: "manifold-label" }, this.plot).textContent = `task ${i + 1}`;
    });
    this.trailLine = svg("polyline", { class: "trail", points: "" }, this.plot);
    this.innerLine = svg("polyline", { class: "inner-path", points: "" }, this.plot);
    svg("polygon", { class: "closest", points: star(FRAME.x(this.closest[0]), FRAME.y(this.closest[1]), 11, 4.5) }, this.plot);
    this.ring = svg("circle", { class: "settling", r: 10 }, this.plot);
    this.phiDot = svg("circle", { class: "phi", r: 9 }, this.plot);
    container.appendChild(this.plot);

    let dragging = false;
    const follow = (event) => {
      const at = eventPoint(this.plot, event);
      if (at) this.moveTo([FRAME.fromX(at[0]), FRAME.fromY(at[1])]);
    };
    this.plot.addEventListener("pointerdown", (event) => {
      dragging = true;
      this.stop();
      this.plot.setPointerCapture(event.pointerId);
      follow(event);
      event.preventDefault();
    });
    this.plot.addEventListener("pointermove", (event) => {
      if (dragging) follow(event);
    });
    const end = () => {
      if (!dragging) return;
      dragging = false;
      this.announceState();
    };
    this.plot.addEventListener("pointerup", end);
    this.plot.addEventListener("pointercancel", end);
    this.plot.addEventListener("keydown", (event) => {
      const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
      if (!moves[event.key]) return;
      event.preventDefault();
      this.stop();
      const step = KEY_STEP * (event.shiftKey ? 5 : 1);
      this.moveTo([this.state.phi[0] + moves[event.key][0] * step, this.state.phi[1] + moves[event.key][1] * step]);
      this.announceState();
    });
  }

  // phi placed by hand: a new start, so the trail starts again.
  moveTo(phi) {
    this.state.phi = [clamp(phi[0], LIMITS.phi), clamp(phi[1], LIMITS.phi)];
    this.trail = [this.state.phi];
    this.inner = [];
    this.draw();
    this.onChange();
  }

  iterate() {
    const taskIndex = Math.floor(this.random() * TASKS.length);
    const result = update(this.state.algorithm, TASKS, taskIndex, this.state.phi, this.state);
    // kept inside the picture's range (a diverging setting stays visible and shareable)
    this.state.phi = [clamp(result.phi[0], LIMITS.phi), clamp(result.phi[1], LIMITS.phi)];
    this.inner = result.inner;
    this.lastTask = this.state.algorithm === "joint" ? null : taskIndex + 1;
    this.trail = [...this.trail.slice(-TRAIL), this.state.phi];
    this.iterations += 1;
    this.draw();
    this.onChange();
  }

  async run() {
    this.lastRun = (this.lastRun || 0) + 1;
    const id = this.lastRun;
    this.running = id;
    this.section.dataset.running = "true";
    const reduced = matchMedia("(prefers-reduced-motion: reduce)").matches;
    for (let i = 0; i < RUN_ITERATIONS && this.running === id; i++) {
      this.iterate();
      await (reduced ? yieldToEvents() : sleep(FRAME_MS));
    }
    if (this.running !== id) return;
    this.stop();
    this.announceState();
  }

  stop() {
    this.running = 0;
    this.section.dataset.running = "false";
  }

  get distance() {
    return distance(this.state.phi, this.closest);
  }

  announceState() {
    this.announce(`\u03c6 at ${fmt(this.state.phi)}, ${formatNumber(this.distance, 2)} from the closest point`);
  }

  draw() {
    const { phi, algorithm } = this.state;
    for (const [key, [input, output, format]] of Object.entries(this.sliders)) {
      input.value = String(this.state[key]);
      output.textContent = format(this.state[key]);
    }
    this.algorithm.value = algorithm;
    this.runButton.textContent = RUN_LABELS[algorithm];
    this.phiDot.setAttribute("cx", FRAME.x(phi[0]));
    this.phiDot.setAttribute("cy", FRAME.y(phi[1]));
    this.trailLine.setAttribute("points", this.trail.map(([x, y]) => `${FRAME.x(x).toFixed(1)},${FRAME.y(y).toFixed(1)}`).join(" "));
    this.innerLine.setAttribute("points", this.inner.map(([x, y]) => `${FRAME.x(x).toFixed(1)},${FRAME.y(y).toFixed(1)}`).join(" "));
    const settling = settlingPoint(algorithm, TASKS, this.state);
    const visible = settling?.every((v) => v >= LIMITS.phi[0] && v <= LIMITS.phi[1]);
    this.ring.setAttribute("visibility", visible ? "visible" : "hidden");
    if (visible) {
      this.ring.setAttribute("cx", FRAME.x(settling[0]));
      this.ring.setAttribute("cy", FRAME.y(settling[1]));
    }
    const where = settling ? `${fmt(settling)}, ${formatNumber(distance(settling, this.closest), 2)} from the star` : "nowhere in particular";
    this.readout.textContent = `\u03c6 = ${fmt(phi)}: ${formatNumber(this.distance, 2)} from the closest point ${fmt(this.closest)}. ` +
      `Iterations: ${this.iterations}${this.lastTask ? ` (last task: ${this.lastTask})` : ""}. ` +
      `On average ${NAMES[algorithm]} settles at ${where}.`;
    this.section.dataset.iterations = String(this.iterations);
  }
}
