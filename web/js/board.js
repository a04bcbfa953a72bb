// The drawings: the classes of example drawings and the test drawings, their lists, editing them.
// Editing: add, remove, rename, examples per class, the preset drawings, clear.
import { $, el, nextId } from "./dom.js";
import { Pad } from "./pad.js";
import { say } from "./status.js";
import { modelInput, paintModelInput, unpackStrokes } from "./strokes.js";

export const MAX_TESTS = 4;

// The drawings' accessible names, stable for screen readers and tests (docs/web.md).
export const classLabel = (c, e) => `Class ${c + 1} example ${e + 1}`;
export const testLabel = (t) => (t === 0 ? "Test drawing" : `Test drawing ${t + 1}`);

// A drawing: a Pad on a canvas with its Undo / Clear buttons and its "what the model sees" view.
export class Drawing {
  // onChange(drawing): a stroke was finished, undone or cleared; showsModel(): paint the model's view
  constructor(label, { big = false, onChange, showsModel }) {
    this.label = label;
    this.showsModel = showsModel;
    const labelId = nextId("label");
    this.canvas = el("canvas", { class: big ? "pad big" : "pad", tabindex: "0", role: "img", "aria-label": label,
      "aria-roledescription": "drawing area", "aria-describedby": "pad-help" });
    this.view = el("canvas", { class: "model-view", width: "28", height: "28", role: "img",
      "aria-label": `What the model sees of ${label}` });
    this.caption = el("span", { class: "pad-label", id: labelId, text: label });
    this.undoButton = el("button", { type: "button", class: "small", text: "Undo", "aria-describedby": labelId,
      onclick: () => this.pad.undo() });
    this.clearButton = el("button", { type: "button", class: "small", text: "Clear", "aria-describedby": labelId,
      onclick: () => this.pad.clear() });
    this.element = el("figure", { class: "drawing" }, this.canvas,
      el("figcaption", {}, this.caption, el("span", { class: "pad-buttons" }, this.undoButton, this.clearButton)),
      this.view);
    this.bars = null; // a test drawing's prediction bars (set by Board.renderTests)
    this.input = undefined; // cached model input (undefined: not computed, null: empty)
    this.pad = new Pad(this.canvas, { onChange: () => onChange(this) });
    this.updateButtons();
  }

  setLabel(label) {
    this.label = label;
    this.canvas.setAttribute("aria-label", label);
    this.view.setAttribute("aria-label", `What the model sees of ${label}`);
    this.caption.textContent = label;
  }

  modelInput() {
    if (this.input === undefined) this.input = modelInput(this.pad.strokes);
    return this.input;
  }

  invalidate() {
    this.input = undefined;
    this.updateButtons();
    if (this.showsModel()) this.paintView();
  }

  paintView() {
    paintModelInput(this.view, this.modelInput());
  }

  updateButtons() {
    const empty = this.pad.isEmpty();
    this.undoButton.disabled = empty;
    this.clearButton.disabled = empty;
    this.canvas.classList.toggle("empty", empty);
  }

  set(strokes) {
    this.pad.setStrokes(strokes);
    this.invalidate();
  }
}

export class Board {
  // limits: the model's class and example counts; shots: examples per class at first;
  // onEdit(penUp): the drawings changed, adapt again (penUp: when the stroke ended, if one did);
  // redrawPredictions(): the bars must be drawn again (test rows rebuilt, classes renamed or added).
  constructor({ limits, shots, onEdit, redrawPredictions }) {
    this.limits = limits;
    this.shots = shots;
    this.onEdit = onEdit;
    this.redrawPredictions = redrawPredictions;
    this.classes = []; // [{name, drawings: [Drawing]}]
    this.tests = []; // [Drawing]
    this.examples = null; // the preset drawings (web/examples/heldout.json), once loaded
    this.showModel = false; // "what the model sees" shown under every drawing
    this.classesList = $("#classes");
    this.testsList = $("#tests");
    this.addClassButton = $("#add-class");
    this.addTestButton = $("#add-test");
    this.shotsSelect = $("#shots");
    for (let s = limits.minShots; s <= limits.maxShots; s++) {
      this.shotsSelect.append(el("option", { value: String(s), text: String(s) }));
    }
    this.shotsSelect.value = String(shots);
    this.shotsSelect.addEventListener("change", () => this.setShots(Number(this.shotsSelect.value)));
    this.addClassButton.addEventListener("click", () => this.addClass());
    this.addTestButton.addEventListener("click", () => this.addTest());
    $("#examples").addEventListener("click", () => {
      this.loadPresets(this.classes.length);
      this.onEdit();
    });
  }

  newDrawing(label, big = false) {
    return new Drawing(label, { big, onChange: (drawing) => this.changed(drawing), showsModel: () => this.showModel });
  }

  changed(drawing) {
    drawing.invalidate();
    this.onEdit(drawing.pad.lastPenUp);
  }

  drawings() {
    return [...this.classes.flatMap((c) => c.drawings), ...this.tests];
  }

  // ---------------------------------------------------------------- the lists on the page
  renderClasses() {
    this.classesList.replaceChildren();
    this.classesList.style.setProperty("--shots", String(this.shots)); // CSSOM: allowed by the CSP
    this.classes.forEach((cls, c) => {
      const nameId = nextId("name");
      const nameInput = el("input", { id: nameId, type: "text", value: cls.name, maxlength: "40", class: "class-name",
        autocomplete: "off", spellcheck: "false" });
      nameInput.addEventListener("input", () => {
        cls.name = nameInput.value.trim() || `Class ${c + 1}`;
        this.redrawPredictions();
      });
      const remove = el("button", { type: "button", class: "small remove", text: "Remove", "aria-label": `Remove class ${c + 1}`,
        disabled: this.classes.length <= this.limits.minClasses, onclick: () => this.removeClass(c) });
      const row = el("li", { class: "class-row" },
        el("div", { class: "class-head" },
          el("label", { for: nameId, class: "visually-hidden", text: `Name of class ${c + 1}` }),
          el("span", { class: "class-number", "aria-hidden": "true", text: `${c + 1}` }), nameInput, remove),
        el("div", { class: "class-drawings" }, ...cls.drawings.map((d) => d.element)));
      this.classesList.append(row);
    });
    this.addClassButton.disabled = this.classes.length >= this.limits.maxClasses;
    this.addTestButton.disabled = this.tests.length >= MAX_TESTS;
  }

  renderTests() {
    this.testsList.replaceChildren();
    this.tests.forEach((drawing, t) => {
      const bars = el("div", { class: "bars", "aria-label": `Prediction for ${testLabel(t)}`, role: "group" });
      drawing.bars = bars;
      const remove = t > 0 ? el("button", { type: "button", class: "small remove", text: "Remove",
        "aria-label": `Remove ${testLabel(t)}`, onclick: () => this.removeTest(t) }) : null;
      this.testsList.append(el("li", { class: "test-row" }, drawing.element, el("div", { class: "test-result" }, bars, remove)));
    });
    this.addTestButton.disabled = this.tests.length >= MAX_TESTS;
    this.redrawPredictions();
  }

  relabel() {
    this.classes.forEach((cls, c) => {
      cls.drawings.forEach((d, e) => {
        d.setLabel(classLabel(c, e));
      });
    });
    this.tests.forEach((d, t) => {
      d.setLabel(testLabel(t));
    });
  }

  makeClass(c, name, strokesList) {
    const drawings = [];
    for (let e = 0; e < this.shots; e++) {
      const drawing = this.newDrawing(classLabel(c, e));
      if (strokesList?.[e]) drawing.set(strokesList[e]);
      drawings.push(drawing);
    }
    return { name, drawings };
  }

  makeTest(t, strokes) {
    const drawing = this.newDrawing(testLabel(t), true);
    drawing.set(strokes);
    return drawing;
  }

  // ---------------------------------------------------------------- presets, saved drawings
  async loadExamples(url) {
    try {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      this.examples = await response.json();
    } catch (error) {
      this.examples = null;
      console.warn("the example drawings could not be loaded:", error.message);
    }
  }

  preset(c) {
    const characters = this.examples?.characters || [];
    const character = characters[c % Math.max(1, characters.length)];
    if (!character) return { name: `Class ${c + 1}`, examples: [] };
    return { name: character.name, examples: character.drawings.slice(0, 5).map((d) => unpackStrokes(d.strokes)) };
  }

  presetTest(t) {
    const characters = this.examples?.characters || [];
    if (!characters.length) return [];
    // the first test drawing is class 2's sixth drawing (class 1's with a single class), then 1, 3, ...
    const order = [1, 0, 2, 3];
    const c = Math.min(order[t % order.length], this.classes.length - 1);
    const drawings = characters[c % characters.length].drawings;
    return unpackStrokes(drawings[drawings.length - 1].strokes);
  }

  // `classes` classes of preset drawings, and as many preset test drawings as there are now (at least one).
  loadPresets(classes) {
    this.classes = [];
    for (let c = 0; c < classes; c++) {
      const p = this.preset(c);
      this.classes.push(this.makeClass(c, p.name, p.examples));
    }
    const tests = Math.max(1, this.tests.length);
    this.tests = [];
    for (let t = 0; t < tests; t++) this.tests.push(this.makeTest(t, this.presetTest(t)));
    this.renderClasses();
    this.renderTests();
  }

  // saved: drawings.js's fromDocument() -> {classes: [{name, examples}], tests, settings: {shots}}
  restore(saved) {
    this.shots = saved.settings.shots;
    this.shotsSelect.value = String(this.shots);
    this.classes = saved.classes.map((c, i) => this.makeClass(i, c.name, c.examples));
    this.tests = saved.tests.map((strokes, t) => this.makeTest(t, strokes));
    this.renderClasses();
    this.renderTests();
  }

  strokes() {
    return {
      classes: this.classes.map((c) => ({ name: c.name, examples: c.drawings.map((d) => d.pad.strokes) })),
      tests: this.tests.map((d) => d.pad.strokes),
    };
  }

  // ---------------------------------------------------------------- editing
  addClass() {
    if (this.classes.length >= this.limits.maxClasses) return;
    this.classes.push(this.makeClass(this.classes.length, `Class ${this.classes.length + 1}`, null));
    this.renderClasses();
    this.redrawPredictions();
    say(`Class ${this.classes.length} added: draw its example${this.shots > 1 ? "s" : ""}`);
    this.classes[this.classes.length - 1].drawings[0].canvas.focus();
    this.onEdit();
  }

  removeClass(c) {
    if (this.classes.length <= this.limits.minClasses) return;
    this.classes.splice(c, 1);
    this.relabel();
    this.renderClasses();
    say(`Class ${c + 1} removed`);
    this.onEdit();
  }

  // An empty test drawing changes no prediction: nothing to adapt until it is drawn in.
  addTest() {
    if (this.tests.length >= MAX_TESTS) return;
    this.tests.push(this.newDrawing(testLabel(this.tests.length), true));
    this.renderTests();
    this.tests[this.tests.length - 1].canvas.focus();
  }

  removeTest(t) {
    this.tests.splice(t, 1);
    this.relabel();
    this.renderTests();
    this.onEdit();
  }

  setShots(shots) {
    shots = Math.min(this.limits.maxShots, Math.max(this.limits.minShots, shots));
    if (shots === this.shots) return;
    this.shots = shots;
    this.classes.forEach((cls, c) => {
      while (cls.drawings.length > shots) cls.drawings.pop();
      while (cls.drawings.length < shots) cls.drawings.push(this.newDrawing(classLabel(c, cls.drawings.length)));
    });
    this.renderClasses();
    this.onEdit();
  }

  // Empties every drawing without adapting (the caller resets what was shown).
  clear() {
    for (const d of this.drawings()) d.set([]);
  }

  showModelViews(on) {
    this.showModel = on;
    if (on) for (const d of this.drawings()) d.paintView();
  }

  // ---------------------------------------------------------------- what the model gets
  // The few-shot task the drawings make: the non-empty example drawings with their class (missing:
  // the 1-based classes without one) and the non-empty test drawings (queryIndex: their rows).
  task() {
    const support = [];
    const labels = [];
    const missing = [];
    this.classes.forEach((cls, c) => {
      let count = 0;
      for (const d of cls.drawings) {
        const input = d.modelInput();
        if (input) {
          support.push(input);
          labels.push(c);
          count++;
        }
      }
      if (!count) missing.push(c + 1);
    });
    const queries = [];
    const queryIndex = [];
    this.tests.forEach((d, t) => {
      const input = d.modelInput();
      if (input) {
        queries.push(input);
        queryIndex.push(t);
      }
    });
    return { support, labels, queries, queryIndex, missing, classes: this.classes.length };
  }

  // Plain arrays of every drawing's model input (null: empty), for tests and benchmarks.
  modelInputs() {
    const plain = (d) => (d.modelInput() ? Array.from(d.modelInput()) : null);
    return { classes: this.classes.map((c) => c.drawings.map(plain)), tests: this.tests.map(plain) };
  }
}
