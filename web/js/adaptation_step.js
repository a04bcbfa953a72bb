// The "Adaptation step" slider: which step's predictions the bars show, from 0 (the start, before any
// step) to the last (the result). The steps between come from the worker's replay of the adaptation
// (Model.trace in engine.js), which follows each browser result; until it arrives, and for a result
// from the server, the bars show the result whatever the slider says.
import { $ } from "./dom.js";

export class StepSlider {
  // onChange(): the step shown changed (redraw the bars)
  constructor(onChange) {
    this.input = $("#adaptation-step");
    this.output = $("#adaptation-step-value");
    this.chosen = null; // the step asked for; null: the last one, whatever the number of steps
    this.steps = Number(this.input.max); // the model's default, until the first result
    this.traced = false; // the shown result's replay has arrived
    this.input.addEventListener("input", () => {
      const k = Number(this.input.value);
      this.chosen = k >= this.steps ? null : k;
      this.show();
      onChange();
    });
    this.show();
  }

  // The step the bars show: null for the result, else 0..steps-1 (only once the replay is in).
  get step() {
    return this.traced && this.chosen !== null && this.chosen < this.steps ? this.chosen : null;
  }

  // Ask for step k (a share link, a save file, ?step=); null or anything else: the last.
  choose(k) {
    this.chosen = Number.isInteger(k) && k >= 0 ? k : null;
    this.show();
  }

  // A new result after `steps` steps; its replay arrives later (replayArrived()) or never (server mode).
  reset(steps) {
    this.steps = steps;
    this.traced = false;
    this.show();
  }

  replayArrived() {
    this.traced = true;
    this.show();
  }

  show() {
    const shown = this.chosen === null ? this.steps : Math.min(this.chosen, this.steps);
    this.input.max = String(this.steps);
    this.input.value = String(shown);
    const where = shown === 0 ? "before the first step (the start)" : `after step ${shown} of ${this.steps}`;
    const waiting = shown < this.steps && !this.traced ? "; shown once the steps are replayed (in your browser)" : "";
    const text = `${shown === this.steps && shown > 0 ? `after all ${shown} steps (the result)` : where}${waiting}`;
    this.output.textContent = text;
    this.input.setAttribute("aria-valuetext", text);
  }
}
