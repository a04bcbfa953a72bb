// The adaptation settings and their controls: browser or server, steps, learning rate, comparison.
// After a failure in one place, it also offers to adapt in the other.
import { $ } from "./dom.js";
import { root } from "./startup.js";

export class Settings {
  // limits.maxSteps, maxLr: the model's bounds; staticSite: no server to adapt on;
  // onChange(): a setting changed (adapt again).
  constructor({ mode, steps, lr, limits, maxLr, staticSite, onChange }) {
    this.mode = mode;
    this.steps = steps;
    this.lr = lr;
    this.compare = false;
    this.limits = limits;
    this.staticSite = staticSite;
    this.onChange = onChange;
    this.stepsInput = $("#steps");
    this.lrInput = $("#lr");
    this.compareBox = $("#compare");
    this.offer = $("#offer");
    for (const radio of root.querySelectorAll("input[name=mode]")) {
      radio.addEventListener("change", () => {
        if (radio.checked) this.setMode(radio.value);
      });
    }
    this.stepsInput.max = String(limits.maxSteps);
    this.stepsInput.value = String(this.steps);
    this.stepsInput.addEventListener("change", () => {
      const steps = Math.round(Number(this.stepsInput.value));
      if (!Number.isFinite(steps) || steps < 1 || steps > limits.maxSteps) {
        this.stepsInput.value = String(this.steps);
        return;
      }
      this.steps = steps;
      this.onChange();
    });
    this.lrInput.value = String(this.lr);
    this.lrInput.addEventListener("change", () => {
      const lr = Number(this.lrInput.value);
      if (!(lr > 0 && lr <= maxLr)) {
        this.lrInput.value = String(this.lr);
        return;
      }
      this.lr = lr;
      this.onChange();
    });
    this.compareBox.addEventListener("change", () => {
      this.compare = this.compareBox.checked;
      this.show();
      this.onChange();
    });
  }

  // The mode on the radios and #demo[data-mode], the server notice, and the note that the
  // comparison only runs in the browser.
  show() {
    for (const radio of root.querySelectorAll("input[name=mode]")) radio.checked = radio.value === this.mode;
    root.dataset.mode = this.mode;
    const notice = $("#server-notice");
    if (notice) notice.hidden = this.mode !== "server";
    $("#compare-note").hidden = !(this.compare && this.mode === "server");
  }

  setMode(mode) {
    if (mode === this.mode || (mode === "server" && this.staticSite)) return;
    this.mode = mode;
    this.show();
    this.onChange();
  }

  // The settings of a loaded drawing set, where valid (a static site stays in the browser).
  apply(saved) {
    if (Number.isInteger(saved.steps) && saved.steps >= 0 && saved.steps <= this.limits.maxSteps) this.steps = saved.steps;
    if (typeof saved.lr === "number" && saved.lr > 0) this.lr = saved.lr;
    if (typeof saved.compare === "boolean") this.compare = saved.compare;
    if ((saved.mode === "browser" || saved.mode === "server") && !this.staticSite) this.mode = saved.mode;
    this.stepsInput.value = String(this.steps);
    this.lrInput.value = String(this.lr);
    this.compareBox.checked = this.compare;
    this.show();
  }

  values() {
    return { mode: this.mode, steps: this.steps, lr: this.lr, compare: this.compare };
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
