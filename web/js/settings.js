// The adaptation settings and their controls: browser or server, steps, optimizer and its learning
// rate, transductive prediction, and the start to compare with. After a failure in one place, it also
// offers to adapt in the other.
import { $ } from "./dom.js";
import { root } from "./startup.js";

// SGD's default step size: a bundle records only Adam's (model.json `adaptation`). Measured with
// benchmarks/adaptation_starts.py (docs/results.md "The demo's comparison starts"): from the
// meta-learned start 10 full-batch SGD steps at 0.001-0.01 are as accurate as Adam's; the loss is
// summed over the drawings, and 0.03 suits 5-way 1-shot but not 10-way 5-shot, where 0.01 is the
// best for every start.
export const SGD_LR = 0.01;
export const OPTIMIZERS = ["adam", "sgd"];
export const COMPARISONS = ["none", "joint", "random"];

// What the bundles' measurements say of a comparison, at 5-way 1-shot with their default adaptation
// (model.json `accuracy`, training/evaluate_bundle.py); "" when either is not measured.
function comparisonAccuracy(meta, start) {
  const row = (accuracy) => accuracy?.results?.find((r) => r.ways === 5 && r.shots === 1);
  const [m, s] = [row(meta), row(start)];
  if (!m || !s) return "";
  const percent = (r) => `${(100 * r.non_transductive.accuracy).toFixed(1)} %`;
  return `Measured on ${s.tasks.toLocaleString("en")} tasks of 5 held-out characters, one example each, with the default ` +
    `steps: ${percent(s)} right from this start, ${percent(m)} from the meta-learned one.`;
}

export class Settings {
  // optimizer, lr, transductive: the model's defaults; limits.maxSteps, maxLr: its bounds;
  // comparisons: the comparison starts the server offers ({joint?, random?}: server/comparisons.py);
  // accuracy: the model's measured accuracy (model.json); staticSite: no server to adapt on;
  // onChange(): a setting changed (adapt again).
  constructor({ mode, steps, optimizer, lr, transductive, limits, maxLr, comparisons, accuracy, staticSite, onChange }) {
    this.mode = mode;
    this.steps = steps;
    this.optimizer = optimizer;
    this.lrs = { adam: 0.001, sgd: SGD_LR, [optimizer]: lr };
    this.transductive = transductive;
    this.compare = "none";
    this.comparisons = comparisons;
    this.accuracy = accuracy;
    this.limits = limits;
    this.maxLr = maxLr;
    this.staticSite = staticSite;
    this.onChange = onChange;
    this.stepsInput = $("#steps");
    this.lrInput = $("#lr");
    this.optimizerSelect = $("#optimizer");
    this.transductiveBox = $("#transductive");
    this.compareSelect = $("#compare");
    this.offer = $("#offer");
    for (const radio of root.querySelectorAll("input[name=mode]")) {
      radio.addEventListener("change", () => {
        if (radio.checked) this.setMode(radio.value);
      });
    }
    for (const option of this.compareSelect.options) {
      option.disabled = option.value !== "none" && !comparisons[option.value];
    }
    this.stepsInput.max = String(limits.maxSteps);
    this.stepsInput.addEventListener("change", () => {
      const steps = Math.round(Number(this.stepsInput.value));
      if (!Number.isFinite(steps) || steps < 1 || steps > limits.maxSteps) {
        this.stepsInput.value = String(this.steps);
        return;
      }
      this.steps = steps;
      this.onChange();
    });
    this.lrInput.addEventListener("change", () => {
      const lr = Number(this.lrInput.value);
      if (!(lr > 0 && lr <= maxLr)) {
        this.lrInput.value = String(this.lr);
        return;
      }
      this.lrs[this.optimizer] = lr;
      this.onChange();
    });
    // each optimizer keeps its own learning rate: switching shows (and uses) the other one's
    this.optimizerSelect.addEventListener("change", () => {
      this.optimizer = this.optimizerSelect.value;
      this.show();
      this.onChange();
    });
    this.transductiveBox.addEventListener("change", () => {
      this.transductive = this.transductiveBox.checked;
      this.onChange();
    });
    this.compareSelect.addEventListener("change", () => {
      this.compare = this.compareSelect.value;
      this.show();
      this.onChange();
    });
    $("#sgd-lr").textContent = String(SGD_LR);
  }

  get lr() {
    return this.lrs[this.optimizer];
  }

  // The comparison start's {name, manifest, weights} URLs, or null for none.
  get comparison() {
    return this.compare === "none" ? null : this.comparisons[this.compare] ?? null;
  }

  // Every control as the settings are, the mode on #demo[data-mode], the server notice, and the note
  // that the comparison only runs in the browser.
  show() {
    for (const radio of root.querySelectorAll("input[name=mode]")) radio.checked = radio.value === this.mode;
    root.dataset.mode = this.mode;
    const notice = $("#server-notice");
    if (notice) notice.hidden = this.mode !== "server";
    this.stepsInput.value = String(this.steps);
    this.optimizerSelect.value = this.optimizer;
    this.lrInput.value = String(this.lr);
    this.transductiveBox.checked = this.transductive;
    this.compareSelect.value = this.compare;
    $("#compare-note").hidden = !(this.compare !== "none" && this.mode === "server");
    const measured = comparisonAccuracy(this.accuracy, this.comparison?.accuracy);
    $("#compare-accuracy").hidden = !measured;
    $("#compare-accuracy").textContent = measured;
  }

  setMode(mode) {
    if (mode === this.mode || (mode === "server" && this.staticSite)) return;
    this.mode = mode;
    this.show();
    this.onChange();
  }

  // The settings of a loaded drawing set or of the page's URL, where valid (a static site stays in
  // the browser). A save file from before "Compare with" had a choice holds compare: true (random).
  apply(saved) {
    if (Number.isInteger(saved.steps) && saved.steps >= 0 && saved.steps <= this.limits.maxSteps) this.steps = saved.steps;
    if (OPTIMIZERS.includes(saved.optimizer)) this.optimizer = saved.optimizer;
    if (typeof saved.lr === "number" && saved.lr > 0 && saved.lr <= this.maxLr) this.lrs[this.optimizer] = saved.lr;
    if (typeof saved.transductive === "boolean") this.transductive = saved.transductive;
    const compare = saved.compare === true ? "random" : saved.compare === false ? "none" : saved.compare;
    if (COMPARISONS.includes(compare) && (compare === "none" || this.comparisons[compare])) this.compare = compare;
    if ((saved.mode === "browser" || saved.mode === "server") && !this.staticSite) this.mode = saved.mode;
    this.show();
  }

  values() {
    return { mode: this.mode, steps: this.steps, optimizer: this.optimizer, lr: this.lr,
      transductive: this.transductive, compare: this.compare };
  }

  // failedPlace: "browser" or "server"
  offerTheOtherPlace(failedPlace) {
    const other = failedPlace === "server" ? "browser" : "server";
    if (other === "server" && this.staticSite) return;
    this.offer.hidden = false;
    $("#offer-text").textContent = other === "server"
      ? "You can let the server adapt instead (your drawings are then sent to it)."
      : "You can adapt in your browser instead (the model and runtime, about 4 MB, are downloaded once).";
    const button = $("#offer-button");
    button.textContent = other === "server" ? "Adapt on the server instead" : "Adapt in your browser instead";
    button.onclick = () => {
      this.setMode(other);
      this.offer.hidden = true;
    };
  }

  hideOffer() {
    this.offer.hidden = true;
  }
}
