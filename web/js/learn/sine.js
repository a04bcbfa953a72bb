// The sine-wave toy on /learn: a plot named "Sine wave" where clicks (or the keyboard cross, or "New
// wave") put points, and the fit of three starts of one network (meta-learned, joint training, random)
// after every step of plain SGD on those points. All the steps of all the starts are computed once per
// change of the points (sine_engine.js), so the "Adaptation steps" slider only redraws.
import { yieldToEvents } from "../engine.js";
import { Frame, eventPoint, formatNumber, svg } from "./plot.js";
import { seededRandom, uniform } from "./random.js";
import { meanSquaredError } from "./sine_engine.js";
import { LIMITS } from "./url_state.js";

// The bundle's weight sets, as the page names and draws them (learn.css colours .start-<key>).
export const STARTS = [
  { set: "meta-learned", key: "meta", name: "meta-learned" },
  { set: "joint", key: "joint", name: "joint training" },
  { set: "random", key: "random", name: "random initialization" },
];
const linspace = (lo, hi, n) => Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
const PLOT_X = linspace(-5, 5, 101);
const CARD_X = linspace(-5, 5, 50); // the model card's measure of a fit: 50 equally spaced x in [-5, 5]
const QUERY_X = [...PLOT_X, ...CARD_X];
const FRAME = new Frame({ width: 560, height: 330, margin: 30, xRange: LIMITS.sineX, yRange: LIMITS.sineY });
const CHART = new Frame({ width: 280, height: 120, margin: 18, xRange: [0, LIMITS.steps[1]], yRange: [0, 1] });
const KEY_STEP = 0.25; // the keyboard cross moves this far (x 4 with Shift)

const round2 = (v) => Math.round(v * 100) / 100;
const waveAt = ([amplitude, phase], x) => amplitude * Math.sin(x + phase);

export class SinePart {
  // section: the part's <section>; state: the page's state (points, wave, K, steps; changed here);
  // model: a Promise of the SineModel; onChange(): the state changed; announce(text): the live region.
  constructor(section, { state, model, onChange, announce }) {
    Object.assign(this, { section, state, model, onChange, announce });
    this.fits = null;
    this.generation = 0;
    this.adaptations = 0;
    this.cursor = [0, 0];
    const $ = (id) => section.querySelector(`#${id}`);
    this.status = $("sine-status");
    this.slider = $("sine-steps");
    this.stepsOutput = $("sine-steps-value");
    this.showWave = $("sine-show-wave");
    this.pointsSelect = $("sine-wave-points");
    this.lossCells = Object.fromEntries(STARTS.map((s) => [s.set, { points: $(`sine-loss-${s.key}`), wave: $(`sine-error-${s.key}`) }]));
    this.buildPlot($("sine-plot"));
    this.buildChart($("sine-chart"));

    this.slider.max = String(LIMITS.steps[1]);
    this.slider.value = String(state.steps);
    this.slider.addEventListener("input", () => {
      state.steps = Number(this.slider.value);
      this.draw();
      onChange();
    });
    this.pointsSelect.value = String(state.K);
    this.pointsSelect.addEventListener("change", () => {
      state.K = Number(this.pointsSelect.value);
      if (state.wave) this.samplePoints(Math.random); // the same hidden wave, seen through K points
      onChange();
    });
    $("sine-new-wave").addEventListener("click", () => this.newWave(Math.random));
    $("sine-remove-point").addEventListener("click", () => this.removePoint());
    $("sine-clear").addEventListener("click", () => this.setPoints([], "Points cleared"));
    this.showWave.addEventListener("change", () => this.draw());
    if (!state.points.length && !state.wave) this.newWave(seededRandom(2018), false); // a first wave, the same for all
    else this.setPoints(state.points, null);
    this.draw();
  }

  buildPlot(container) {
    this.plot = svg("svg", { viewBox: `0 0 ${FRAME.width} ${FRAME.height}`, class: "plot sine-plot", role: "application",
      "aria-label": "Sine wave", "aria-roledescription": "plot", "aria-describedby": "sine-help sine-summary", tabindex: 0 });
    FRAME.axes(this.plot, { xStep: 1, yStep: 2, xLabel: "x", yLabel: "y" });
    this.wavePath = svg("polyline", { class: "hidden-wave", points: "" }, this.plot);
    this.fitPaths = Object.fromEntries(STARTS.map((s) => [s.set, svg("polyline", { class: `fit start-${s.key}`, points: "" }, this.plot)]));
    this.pointsGroup = svg("g", { class: "points" }, this.plot);
    this.cross = svg("g", { class: "cross", "aria-hidden": "true" }, this.plot);
    svg("line", { x1: -8, y1: 0, x2: 8, y2: 0 }, this.cross);
    svg("line", { x1: 0, y1: -8, x2: 0, y2: 8 }, this.cross);
    container.appendChild(this.plot);
    this.plot.addEventListener("click", (event) => {
      const at = eventPoint(this.plot, event);
      if (at) this.addPoint(FRAME.fromX(at[0]), FRAME.fromY(at[1]));
    });
    this.plot.addEventListener("keydown", (event) => this.onKey(event));
    this.moveCross(0, 0);
  }

  buildChart(container) {
    this.chart = svg("svg", { viewBox: `0 0 ${CHART.width} ${CHART.height}`, class: "plot loss-curves", role: "img",
      "aria-label": "Loss on the points at each step" });
    CHART.axes(this.chart, { xStep: 8, yStep: 2, xLabel: "step" });
    this.curves = Object.fromEntries(STARTS.map((s) => [s.set, svg("polyline", { class: `fit start-${s.key}`, points: "" }, this.chart)]));
    this.marker = svg("line", { class: "step-marker", y1: CHART.y(0), y2: CHART.y(1) }, this.chart);
    container.appendChild(this.chart);
  }

  onKey(event) {
    const big = event.shiftKey ? 4 : 1;
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
    if (moves[event.key]) {
      const [dx, dy] = moves[event.key];
      this.moveCross(this.cursor[0] + dx * KEY_STEP * big, this.cursor[1] + dy * KEY_STEP * big);
    } else if (event.key === "Enter" || event.key === " ") {
      this.addPoint(...this.cursor);
    } else if (event.key === "Delete" || event.key === "Backspace") {
      this.removePoint();
    } else {
      return;
    }
    event.preventDefault();
  }

  moveCross(x, y) {
    const clamp = (v, [lo, hi]) => Math.min(hi, Math.max(lo, v));
    this.cursor = [clamp(x, LIMITS.sineX), clamp(y, LIMITS.sineY)];
    this.cross.setAttribute("transform", `translate(${FRAME.x(this.cursor[0]).toFixed(1)} ${FRAME.y(this.cursor[1]).toFixed(1)})`);
  }

  addPoint(x, y) {
    const inside = (v, [lo, hi]) => v >= lo && v <= hi;
    if (!inside(x, LIMITS.sineX) || !inside(y, LIMITS.sineY)) return;
    if (this.state.points.length >= LIMITS.maxPoints) {
      this.announce(`At most ${LIMITS.maxPoints} points: remove one first`);
      return;
    }
    const point = [round2(x), round2(y)];
    this.setPoints([...this.state.points, point], `Point added at x ${formatNumber(point[0])}, y ${formatNumber(point[1])}`);
  }

  removePoint() {
    if (this.state.points.length) this.setPoints(this.state.points.slice(0, -1), "Last point removed");
  }

  // A hidden wave of the bundle's family and K points of it (random: a U[0, 1) source).
  newWave(random, announce = true) {
    this.state.wave = [Math.round(uniform(random, 0.1, 5) * 1000) / 1000, Math.round(uniform(random, 0, 2 * Math.PI) * 1000) / 1000];
    this.samplePoints(random, announce ? `New wave: ${this.state.K} points` : null);
  }

  samplePoints(random, message = `${this.state.K} points of the same wave`) {
    const xs = Array.from({ length: this.state.K }, () => round2(uniform(random, ...LIMITS.sineX)));
    this.setPoints(xs.map((x) => [x, round2(waveAt(this.state.wave, x))]), message);
  }

  setPoints(points, message) {
    this.state.points = points;
    if (message) {
      this.announce(`${message} (${points.length} point${points.length === 1 ? "" : "s"})`);
      this.onChange();
    }
    this.drawPoints();
    this.adapt();
  }

  // Every start's 0..steps fits on the current points; a newer change stops this one between steps.
  async adapt() {
    const generation = ++this.generation;
    const xs = this.state.points.map((p) => p[0]);
    const ys = this.state.points.map((p) => p[1]);
    this.section.dataset.busy = "true";
    this.status.textContent = "Adapting…";
    let model;
    try {
      model = await this.model;
    } catch (error) {
      this.status.textContent = `The sine model did not load: ${error.message}`;
      this.section.dataset.busy = "false";
      return;
    }
    const started = performance.now();
    const shouldStop = async () => {
      await yieldToEvents(); // lets a click arrive between two steps
      return generation !== this.generation;
    };
    const fits = {};
    for (const start of STARTS) {
      const fit = await model.adapt({ xs, ys, weightSet: start.set, steps: model.defaults.steps, lr: model.defaults.lr,
        queryX: QUERY_X, shouldStop });
      if (fit === null || generation !== this.generation) return;
      fits[start.set] = fit;
    }
    this.fits = fits;
    this.elapsedMs = performance.now() - started;
    this.adaptations += 1;
    this.section.dataset.adaptations = String(this.adaptations);
    this.section.dataset.busy = "false";
    const { steps, lr } = model.defaults;
    this.status.textContent = xs.length
      ? `${steps} steps of gradient descent (step size ${lr}) from each start, in your browser: ${Math.round(this.elapsedMs)} ms.`
      : "Add points: click the plot, or press New wave. The curves are the three starts before any step.";
    this.draw();
  }

  // The fit of one start after `step` steps at the plot's x (plain arrays, for tests and the curious).
  fitAt(set, step) {
    const fit = this.fits?.[set];
    if (!fit) return null;
    const k = Math.min(step, fit.predictions.length - 1);
    return { x: PLOT_X, y: Array.from(fit.predictions[k].subarray(0, PLOT_X.length)), loss: fit.losses[k] };
  }

  drawPoints() {
    this.pointsGroup.replaceChildren();
    for (const [x, y] of this.state.points) svg("circle", { cx: FRAME.x(x), cy: FRAME.y(y), r: 5, class: "point" }, this.pointsGroup);
  }

  // The losses at the slider's step: on the points, and (with a hidden wave) against it on the card's grid.
  lossesAt(step) {
    const truth = this.state.wave ? CARD_X.map((x) => waveAt(this.state.wave, x)) : null;
    return Object.fromEntries(STARTS.map(({ set }) => {
      const fit = this.fits[set];
      const k = Math.min(step, fit.predictions.length - 1);
      const onPoints = this.state.points.length ? fit.losses[k] : Number.NaN;
      return [set, { onPoints, onWave: truth ? meanSquaredError(fit.predictions[k].subarray(PLOT_X.length), truth) : Number.NaN }];
    }));
  }

  draw() {
    const step = this.state.steps;
    this.slider.value = String(step);
    this.stepsOutput.textContent = `${step} step${step === 1 ? "" : "s"}`;
    this.pointsSelect.value = String(this.state.K);
    const wave = this.state.wave;
    this.wavePath.setAttribute("points", wave && this.showWave.checked ? FRAME.points(PLOT_X, PLOT_X.map((x) => waveAt(wave, x))) : "");
    if (!this.fits) return;
    const losses = this.lossesAt(step);
    let top = 0;
    for (const { set } of STARTS) {
      const fit = this.fits[set];
      const k = Math.min(step, fit.predictions.length - 1);
      this.fitPaths[set].setAttribute("points", FRAME.points(PLOT_X, fit.predictions[k].subarray(0, PLOT_X.length)));
      this.lossCells[set].points.textContent = formatNumber(losses[set].onPoints);
      this.lossCells[set].wave.textContent = formatNumber(losses[set].onWave);
      top = Math.max(top, ...fit.losses.filter(Number.isFinite));
    }
    // the loss curves on a log scale (log(1 + loss)), so that both a falling and a flat curve read
    const scale = Math.log1p(top) || 1;
    for (const { set } of STARTS) {
      const curve = this.fits[set].losses;
      const steps = curve.map((_, k) => k);
      this.curves[set].setAttribute("points", curve.length > 1 ? CHART.points(steps, curve.map((v) => Math.log1p(v) / scale)) : "");
    }
    this.marker.setAttribute("x1", CHART.x(step));
    this.marker.setAttribute("x2", CHART.x(step));
    const summary = this.state.points.length
      ? `${this.state.points.length} points. After ${step} steps, the loss on the points: ` +
        STARTS.map((s) => `${s.name} ${formatNumber(losses[s.set].onPoints)}`).join(", ")
      : "No points yet.";
    this.section.querySelector("#sine-summary").textContent = summary;
  }
}
