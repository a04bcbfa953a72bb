// The demo page: classes of example drawings, test drawings, automatic re-adaptation after each
// stroke (newest request only) in the browser or on the server, loss chart, prediction bars,
// save / load / share, embed messages, projector mode. Configuration comes from the page's
// #demo[data-config] (rendered by the server, or by the static export): no inline script.
import { Scheduler, ServerAdapter } from "./adapters.js";
import { LossChart } from "./chart.js";
import { decodeFragment, encodeFragment, fromDocument, toDocument } from "./drawings.js";
import { Pad } from "./pad.js";
import { browser, config, root, urls } from "./startup.js";
import { modelInput, paintModelInput, unpackStrokes } from "./strokes.js";

const model = config.model || {};
const embed = Boolean(config.embed);
const staticSite = Boolean(config.static);
const MAX_TESTS = 4;
const limits = {
  minClasses: model.classes?.min ?? 2,
  maxClasses: model.classes?.max ?? 10,
  minShots: model.shots?.min ?? 1,
  maxShots: model.shots?.max ?? 5,
  maxSteps: model.limits?.max_steps ?? 500,
  maxTests: MAX_TESTS,
};
const $ = (selector, parent = root) => parent.querySelector(selector);

// ------------------------------------------------------------------ element helpers
function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "text") element.textContent = value;
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child) element.append(child);
  return element;
}

let uid = 0;
const nextId = (prefix) => `${prefix}-${++uid}`;

// ------------------------------------------------------------------ state
const app = {
  classes: [], // [{name, drawings: [Drawing]}]
  tests: [], // [Drawing]
  shots: config.settings.shots,
  mode: staticSite ? "browser" : config.settings.mode,
  // ?steps=N overrides the model's default number of steps (also settable on the page)
  steps: Number(new URLSearchParams(location.search).get("steps")) || model.adaptation?.steps || 100,
  lr: model.adaptation?.lr ?? 0.001,
  compare: false,
  showModel: false,
  examples: null,
  started: !embed, // an embedded demo starts when scrolled into view
  lastResult: null,
  adaptations: 0,
  metrics: [],
};

const server = staticSite ? null : new ServerAdapter(urls.api);
const adapterFor = (mode) => (mode === "server" ? server : browser);

// A drawing: a Pad on a canvas with its Undo / Clear buttons and its "what the model sees" view.
class Drawing {
  constructor(label, { big = false } = {}) {
    this.label = label;
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
    this.input = undefined; // cached model input (undefined: not computed, null: empty)
    this.pad = new Pad(this.canvas, { onChange: (_, why) => changed(this, why) });
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
    if (app.showModel) paintModelInput(this.view, this.modelInput());
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

// ------------------------------------------------------------------ layout
const classesList = $("#classes");
const testsList = $("#tests");
const status = $("#status");
const announce = $("#announce");
const stopButton = $("#stop");
const addClassButton = $("#add-class");
const addTestButton = $("#add-test");
const shotsSelect = $("#shots");
const stepsInput = $("#steps");
const lrInput = $("#lr");
const compareBox = $("#compare");
const showModelBox = $("#show-model");
const chart = new LossChart($("#chart"));
const predictions = $("#predictions");
const offer = $("#offer");

function classLabel(c, e) {
  return `Class ${c + 1} example ${e + 1}`;
}

function testLabel(t) {
  return t === 0 ? "Test drawing" : `Test drawing ${t + 1}`;
}

function renderClasses() {
  classesList.replaceChildren();
  classesList.style.setProperty("--shots", String(app.shots)); // CSSOM: allowed by the CSP
  app.classes.forEach((cls, c) => {
    const nameId = nextId("name");
    const nameInput = el("input", { id: nameId, type: "text", value: cls.name, maxlength: "40", class: "class-name",
      autocomplete: "off", spellcheck: "false" });
    nameInput.addEventListener("input", () => {
      cls.name = nameInput.value.trim() || `Class ${c + 1}`;
      renderPredictions();
    });
    const remove = el("button", { type: "button", class: "small remove", text: "Remove", "aria-label": `Remove class ${c + 1}`,
      disabled: app.classes.length <= limits.minClasses, onclick: () => removeClass(c) });
    const row = el("li", { class: "class-row" },
      el("div", { class: "class-head" },
        el("label", { for: nameId, class: "visually-hidden", text: `Name of class ${c + 1}` }),
        el("span", { class: "class-number", "aria-hidden": "true", text: `${c + 1}` }), nameInput, remove),
      el("div", { class: "class-drawings" }, ...cls.drawings.map((d) => d.element)));
    classesList.append(row);
  });
  addClassButton.disabled = app.classes.length >= limits.maxClasses;
  addTestButton.disabled = app.tests.length >= MAX_TESTS;
}

function renderTests() {
  testsList.replaceChildren();
  app.tests.forEach((drawing, t) => {
    const bars = el("div", { class: "bars", "aria-label": `Prediction for ${testLabel(t)}`, role: "group" });
    drawing.bars = bars;
    const remove = t > 0 ? el("button", { type: "button", class: "small remove", text: "Remove",
      "aria-label": `Remove ${testLabel(t)}`, onclick: () => removeTest(t) }) : null;
    testsList.append(el("li", { class: "test-row" }, drawing.element, el("div", { class: "test-result" }, bars, remove)));
  });
  addTestButton.disabled = app.tests.length >= MAX_TESTS;
  renderPredictions();
}

function makeClass(c, name, strokesList) {
  const drawings = [];
  for (let e = 0; e < app.shots; e++) {
    const drawing = new Drawing(classLabel(c, e));
    if (strokesList && strokesList[e]) drawing.set(strokesList[e]);
    drawings.push(drawing);
  }
  return { name, drawings };
}

function relabel() {
  app.classes.forEach((cls, c) => cls.drawings.forEach((d, e) => d.setLabel(classLabel(c, e))));
  app.tests.forEach((d, t) => d.setLabel(testLabel(t)));
}

function preset(c) {
  const characters = app.examples?.characters || [];
  const character = characters[c % Math.max(1, characters.length)];
  if (!character) return { name: `Class ${c + 1}`, examples: [] };
  return { name: character.name, examples: character.drawings.slice(0, 5).map((d) => unpackStrokes(d.strokes)) };
}

function presetTest(t) {
  const characters = app.examples?.characters || [];
  if (!characters.length) return [];
  // the first test drawing is class 2's sixth drawing (class 1's with a single class), then 1, 3, ...
  const order = [1, 0, 2, 3];
  const c = Math.min(order[t % order.length], app.classes.length - 1);
  const drawings = characters[c % characters.length].drawings;
  return unpackStrokes(drawings[drawings.length - 1].strokes);
}

function loadPresets(classes = app.classes.length || config.settings.classes) {
  app.classes = [];
  for (let c = 0; c < classes; c++) {
    const p = preset(c);
    app.classes.push(makeClass(c, p.name, p.examples));
  }
  const tests = Math.max(1, app.tests.length);
  app.tests = [];
  for (let t = 0; t < tests; t++) {
    const drawing = new Drawing(testLabel(t), { big: true });
    drawing.set(presetTest(t));
    app.tests.push(drawing);
  }
  renderClasses();
  renderTests();
}

function restore(snapshot) {
  app.shots = snapshot.settings.shots;
  shotsSelect.value = String(app.shots);
  const s = snapshot.settings;
  if (Number.isInteger(s.steps) && s.steps >= 0 && s.steps <= limits.maxSteps) app.steps = s.steps;
  if (typeof s.lr === "number" && s.lr > 0) app.lr = s.lr;
  if (typeof s.compare === "boolean") app.compare = s.compare;
  if ((s.mode === "browser" || s.mode === "server") && !staticSite) app.mode = s.mode;
  stepsInput.value = String(app.steps);
  lrInput.value = String(app.lr);
  compareBox.checked = app.compare;
  setModeControls();
  app.classes = snapshot.classes.map((c, i) => makeClass(i, c.name, c.examples));
  app.tests = snapshot.tests.map((strokes, t) => {
    const drawing = new Drawing(testLabel(t), { big: true });
    drawing.set(strokes);
    return drawing;
  });
  renderClasses();
  renderTests();
}

function snapshot() {
  return {
    settings: { shots: app.shots, mode: app.mode, steps: app.steps, lr: app.lr, compare: app.compare },
    classes: app.classes.map((c) => ({ name: c.name, examples: c.drawings.map((d) => d.pad.strokes) })),
    tests: app.tests.map((d) => d.pad.strokes),
  };
}

// ------------------------------------------------------------------ editing
function addClass() {
  if (app.classes.length >= limits.maxClasses) return;
  app.classes.push(makeClass(app.classes.length, `Class ${app.classes.length + 1}`, null));
  renderClasses();
  renderPredictions();
  say(`Class ${app.classes.length} added: draw its example${app.shots > 1 ? "s" : ""}`);
  app.classes[app.classes.length - 1].drawings[0].canvas.focus();
  schedule();
}

function removeClass(c) {
  if (app.classes.length <= limits.minClasses) return;
  app.classes.splice(c, 1);
  relabel();
  renderClasses();
  say(`Class ${c + 1} removed`);
  schedule();
}

function addTest() {
  if (app.tests.length >= MAX_TESTS) return;
  app.tests.push(new Drawing(testLabel(app.tests.length), { big: true }));
  renderTests();
  app.tests[app.tests.length - 1].canvas.focus();
}

function removeTest(t) {
  app.tests.splice(t, 1);
  relabel();
  renderTests();
  schedule();
}

function setShots(shots) {
  shots = Math.min(limits.maxShots, Math.max(limits.minShots, shots));
  if (shots === app.shots) return;
  app.shots = shots;
  app.classes.forEach((cls, c) => {
    while (cls.drawings.length > shots) cls.drawings.pop();
    while (cls.drawings.length < shots) cls.drawings.push(new Drawing(classLabel(c, cls.drawings.length)));
  });
  renderClasses();
  schedule();
}

function clearAll() {
  for (const cls of app.classes) for (const d of cls.drawings) d.set([]);
  for (const d of app.tests) d.set([]);
  app.lastResult = null;
  renderPredictions();
  chart.reset(app.steps);
  setStatus("Cleared. Draw an example of every class, then a test drawing.", "idle");
  scheduler.stop();
}

function changed(drawing) {
  drawing.invalidate();
  schedule(drawing.pad.lastPenUp);
}

// ------------------------------------------------------------------ adaptation
function setStatus(text, state) {
  status.textContent = text;
  root.dataset.status = state;
  stopButton.disabled = state !== "running";
}

function say(text) {
  announce.textContent = "";
  // a fresh text node so that screen readers announce a repeated message too
  requestAnimationFrame(() => { announce.textContent = text; });
}

function request() {
  const support = [];
  const labels = [];
  const missing = [];
  app.classes.forEach((cls, c) => {
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
  app.tests.forEach((d, t) => {
    const input = d.modelInput();
    if (input) {
      queries.push(input);
      queryIndex.push(t);
    }
  });
  return { support, labels, queries, queryIndex, missing, classes: app.classes.length };
}

let triggeredAt = 0;
let runtimeCached = false;

function schedule(penUp = performance.now()) {
  if (!app.started) return;
  const r = request();
  if (r.missing.length) {
    scheduler.stop();
    const which = r.missing.length === 1 ? `class ${r.missing[0]}` : `classes ${r.missing.join(", ")}`;
    setStatus(`Draw an example of ${which} to adapt the model.`, "waiting");
    return;
  }
  if (!r.queries.length) {
    scheduler.stop();
    setStatus("Draw something in the test area to see what the model thinks it is.", "waiting");
    renderPredictions();
    return;
  }
  triggeredAt = penUp || performance.now();
  scheduler.submit(adapterFor(app.mode), {
    support: r.support, labels: r.labels, queries: r.queries, classes: r.classes, steps: app.steps, lr: app.lr,
    compare: app.compare, queryIndex: r.queryIndex, triggeredAt, names: app.classes.map((c) => c.name),
  });
}

const scheduler = new Scheduler({
  started(req, adapter) {
    chart.reset(req.steps);
    const where = adapter.place === "server" ? "on the server" : browser.info ? "in your browser"
      : "in your browser (loading the model and WebAssembly runtime the first time)";
    setStatus(`Adapting ${where}…`, "running");
    root.classList.add("busy");
  },
  step(which, k, loss) {
    chart.add(which, k, loss);
    if (which === "meta" && (k % 10 === 9 || k === 0)) {
      status.textContent = status.textContent.replace(/(…| — step \d+\/\d+)$/, ` — step ${k + 1}/${chart.steps}`);
    }
  },
  done(req, result, adapter) {
    root.classList.remove("busy");
    app.adaptations++;
    app.lastResult = { ...result, queryIndex: req.queryIndex, names: req.names, place: adapter.place };
    chart.set("meta", result.losses);
    if (result.compare) chart.set("random", result.compare.losses);
    renderPredictions();
    const shownAt = performance.now();
    const total = shownAt - req.triggeredAt;
    const where = adapter.describe();
    const compute = adapter.place === "server" ? `; ${Math.round(result.elapsedMs)} ms of it computing` : "";
    setStatus(`Adapted in ${formatMs(total)} ${where}: ${result.losses.length} steps${compute}.`, "done");
    app.metrics.push({ place: adapter.place, triggeredAt: req.triggeredAt, shownAt, totalMs: total,
      computeMs: result.computeMs, serverMs: adapter.place === "server" ? result.elapsedMs : null,
      steps: result.losses.length, support: req.support.length, classes: req.classes, threads: browser.info?.numThreads });
    root.dataset.adaptations = String(app.adaptations);
    announcePrediction(result, req);
    postPrediction(result, req);
    if (adapter === browser && !runtimeCached) {
      runtimeCached = true;
      cacheForOffline();
    }
    if (!serviceWorkerStarted) (window.requestIdleCallback || setTimeout)(startServiceWorker);
    offer.hidden = true;
  },
  stopped() {
    root.classList.remove("busy");
    setStatus("Stopped. The next stroke adapts again.", "stopped");
  },
  failed(req, error, adapter) {
    root.classList.remove("busy");
    const place = adapter.place === "server" ? "on the server" : "in your browser";
    setStatus(`Adapting ${place} failed: ${error.message}`, "error");
    const other = adapter.place === "server" ? "browser" : "server";
    if (other === "server" && staticSite) return;
    offer.hidden = false;
    $("#offer-text").textContent = other === "server"
      ? "You can let the server adapt instead (your drawings are then sent to it)."
      : "You can adapt in your browser instead (the model and runtime, about 4 MB, are downloaded once).";
    const button = $("#offer-button");
    button.textContent = other === "server" ? "Adapt on the server instead" : "Adapt in your browser instead";
    button.onclick = () => { setMode(other); offer.hidden = true; };
  },
});

function formatMs(ms) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

function barList(probabilities, names, title) {
  const top = argmax(probabilities);
  const list = el("ol", { class: "bar-list" });
  probabilities.forEach((p, c) => {
    const fill = el("span", { class: "bar-fill" });
    fill.style.width = `${(100 * p).toFixed(1)}%`; // CSSOM, allowed by the CSP (no style attribute)
    const item = el("li", { class: c === top ? "bar top" : "bar" },
      el("span", { class: "bar-name", text: names[c] ?? `Class ${c + 1}` }),
      el("span", { class: "bar-track", "aria-hidden": "true" }, fill),
      el("span", { class: "bar-value", text: `${(100 * p).toFixed(1)}%` }),
      c === top ? el("span", { class: "bar-mark", text: "predicted" }) : null);
    list.append(item);
  });
  return el("div", { class: "bar-group" }, title ? el("p", { class: "bar-title", text: title }) : null, list);
}

function renderPredictions() {
  const result = app.lastResult;
  const names = app.classes.map((c) => c.name);
  for (const [t, drawing] of app.tests.entries()) {
    if (!drawing.bars) continue;
    const row = result ? result.queryIndex.indexOf(t) : -1;
    if (row < 0 || !result || result.probabilities[row].length !== names.length) {
      drawing.bars.replaceChildren(el("p", { class: "hint", text: drawing.pad.isEmpty() ? "Draw a test character here." : "…" }));
      continue;
    }
    const groups = [barList(result.probabilities[row], names, result.compare ? "With meta-learning (Reptile)" : null)];
    if (result.compare) groups.push(barList(result.compare.probabilities[row], names, "Without meta-learning (random initialization)"));
    drawing.bars.replaceChildren(...groups);
  }
  predictions.dataset.ready = result ? "true" : "false";
}

function announcePrediction(result, req) {
  const parts = result.probabilities.map((p, i) => {
    const c = argmax(p);
    return `${testLabel(req.queryIndex[i])}: ${req.names[c]} (${Math.round(100 * p[c])}%)`;
  });
  say(`Prediction — ${parts.join("; ")}`);
}

function postPrediction(result, req) {
  if (!embed || window.parent === window) return;
  const p = result.probabilities[0];
  window.parent.postMessage({ type: "reptile:prediction", labels: req.names, probabilities: p, predicted: argmax(p) }, "*");
}

// ------------------------------------------------------------------ controls
function setModeControls() {
  for (const radio of root.querySelectorAll("input[name=mode]")) radio.checked = radio.value === app.mode;
  root.dataset.mode = app.mode;
  const notice = $("#server-notice");
  if (notice) notice.hidden = app.mode !== "server";
  $("#compare-note").hidden = !(app.compare && app.mode === "server");
}

function setMode(mode) {
  if (mode === app.mode || (mode === "server" && staticSite)) return;
  app.mode = mode;
  setModeControls();
  schedule();
}

for (const radio of root.querySelectorAll("input[name=mode]")) {
  radio.addEventListener("change", () => { if (radio.checked) setMode(radio.value); });
}
addClassButton.addEventListener("click", addClass);
addTestButton.addEventListener("click", addTest);
$("#clear-all").addEventListener("click", clearAll);
$("#examples").addEventListener("click", () => {
  loadPresets(app.classes.length);
  schedule();
});
stopButton.addEventListener("click", () => scheduler.stop());
for (let s = limits.minShots; s <= limits.maxShots; s++) shotsSelect.append(el("option", { value: String(s), text: String(s) }));
shotsSelect.value = String(app.shots);
shotsSelect.addEventListener("change", () => setShots(Number(shotsSelect.value)));
stepsInput.max = String(limits.maxSteps);
stepsInput.value = String(app.steps);
stepsInput.addEventListener("change", () => {
  const steps = Math.round(Number(stepsInput.value));
  if (!Number.isFinite(steps) || steps < 1 || steps > limits.maxSteps) {
    stepsInput.value = String(app.steps);
    return;
  }
  app.steps = steps;
  schedule();
});
lrInput.value = String(app.lr);
lrInput.addEventListener("change", () => {
  const lr = Number(lrInput.value);
  if (!(lr > 0 && lr <= (model.limits?.max_lr ?? 1))) {
    lrInput.value = String(app.lr);
    return;
  }
  app.lr = lr;
  schedule();
});
compareBox.addEventListener("change", () => {
  app.compare = compareBox.checked;
  setModeControls();
  schedule();
});
showModelBox.addEventListener("change", () => {
  app.showModel = showModelBox.checked;
  root.classList.toggle("show-model", app.showModel);
  if (app.showModel) for (const d of allDrawings()) paintModelInput(d.view, d.modelInput());
});

function allDrawings() {
  return [...app.classes.flatMap((c) => c.drawings), ...app.tests];
}

// Save / load / share (the full page only)
const saveButton = $("#save");
if (saveButton) {
  saveButton.addEventListener("click", () => {
    const doc = toDocument(snapshot(), model.name);
    const blob = new Blob([JSON.stringify(doc)], { type: "application/json" });
    const link = el("a", { href: URL.createObjectURL(blob), download: "reptile-drawings.json" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    say("Drawings saved as reptile-drawings.json");
  });
  $("#load").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (!file) return;
    try {
      restore(fromDocument(JSON.parse(await file.text()), limits));
      say(`Loaded ${file.name}`);
      schedule();
    } catch (error) {
      setStatus(`Could not load ${file.name}: ${error.message}`, "error");
    }
  });
  $("#share").addEventListener("click", async () => {
    const fragment = await encodeFragment(toDocument(snapshot(), model.name));
    const url = `${location.origin}${location.pathname}${location.search}#d=${fragment}`;
    history.replaceState(null, "", `#d=${fragment}`);
    const field = $("#share-url");
    field.value = url;
    field.hidden = false;
    field.select();
    try {
      await navigator.clipboard.writeText(url);
      say("Share link copied");
    } catch {
      say("Share link ready to copy");
    }
  });
}

const projectorButton = $("#projector");
if (projectorButton) {
  projectorButton.addEventListener("click", () => {
    const on = !document.documentElement.classList.contains("projector");
    document.documentElement.classList.toggle("projector", on);
    projectorButton.setAttribute("aria-pressed", String(on));
    for (const d of allDrawings()) d.pad.resize();
  });
}

// The embed snippet: an iframe of /embed with the current settings, and a copy button.
const snippet = $("#embed-code");
if (snippet) {
  const src = new URL(urls.embed || "embed", location.href);
  src.search = new URLSearchParams({ classes: String(config.settings.classes), shots: String(config.settings.shots),
    mode: config.settings.mode, theme: config.settings.theme }).toString();
  snippet.value = `<iframe src="${src.href}" title="Reptile few-shot learning demo" width="100%" height="640" ` +
    `loading="lazy" allow="clipboard-write"></iframe>\n` +
    `<!-- optional: let the demo set its own height -->\n` +
    `<script>addEventListener("message",e=>{if(e.origin==="${src.origin}"&&e.data&&e.data.type==="embed-size")` +
    `for(const f of document.querySelectorAll('iframe[src^="${src.origin}/embed"]'))if(f.contentWindow===e.source)f.height=e.data.height})</script>`;
  $("#copy-embed").addEventListener("click", async () => {
    snippet.select();
    try {
      await navigator.clipboard.writeText(snippet.value);
      say("Embed code copied");
    } catch {
      say("Embed code selected: copy it with Ctrl+C");
    }
  });
}

// Embedded: tell the parent page our height.
if (embed && window.parent !== window) {
  let last = 0;
  const post = () => {
    const height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (height !== last) {
      last = height;
      window.parent.postMessage({ sentinel: "amp", type: "embed-size", height }, "*");
    }
  };
  new ResizeObserver(post).observe(document.documentElement);
  post();
}

// ------------------------------------------------------------------ start
async function loadExamples() {
  try {
    const response = await fetch(urls.examples);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    app.examples = await response.json();
  } catch (error) {
    app.examples = null;
    console.warn("the example drawings could not be loaded:", error.message);
  }
}

async function start() {
  setModeControls();
  // startup.js has begun loading the browser runtime, if the page opens in browser mode
  await loadExamples();
  let restored = false;
  const hash = location.hash.startsWith("#d=") ? location.hash.slice(3) : null;
  if (hash) {
    try {
      restore(fromDocument(await decodeFragment(hash), limits));
      restored = true;
    } catch (error) {
      setStatus(`The link's drawings could not be read (${error.message}); showing the examples instead.`, "error");
    }
  }
  if (!restored) loadPresets(config.settings.classes);
  root.dataset.ready = "true";
  if (embed) {
    setStatus("The demo starts when it scrolls into view.", "idle");
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) {
        observer.disconnect();
        app.started = true;
        schedule();
      }
    });
    observer.observe(root);
  } else {
    schedule();
  }
  // Offline use waits for the first prediction (or 10 s): installing the service worker and caching
  // what the page loaded would compete with the first adaptation for the CPU.
  setTimeout(startServiceWorker, 10_000);
}

let serviceWorkerStarted = false;
function startServiceWorker() {
  if (serviceWorkerStarted || !("serviceWorker" in navigator) || !urls.sw || !window.isSecureContext) return;
  serviceWorkerStarted = true;
  navigator.serviceWorker.register(urls.sw).then(() => navigator.serviceWorker.ready)
    .then((registration) => {
      serviceWorker = registration.active;
      cacheForOffline();
    })
    .catch((error) => console.warn("offline use is not available:", error.message));
}

// Hand the service worker what the page and the adaptation worker loaded before it took control
// (it caches what it does not have yet); again once the browser runtime is loaded.
let serviceWorker = null;
function cacheForOffline() {
  if (!serviceWorker) return;
  const loaded = [location.href.split("#")[0], ...performance.getEntriesByType("resource").map((e) => e.name),
    ...(browser.info?.resources || [])];
  serviceWorker.postMessage({ type: "cache", urls: loaded.filter((u) => u.startsWith(location.origin) && !u.includes("/api/")) });
}

// For tests, benchmarks and the curious: read-only views of the state.
window.reptileDemo = {
  get metrics() { return app.metrics; },
  get lastResult() { return app.lastResult; },
  get adaptations() { return app.adaptations; },
  get runtime() { return browser.info; },
  modelInputs: () => ({ classes: app.classes.map((c) => c.drawings.map((d) => (d.modelInput() ? Array.from(d.modelInput()) : null))),
    tests: app.tests.map((d) => (d.modelInput() ? Array.from(d.modelInput()) : null)) }),
  snapshot: () => toDocument(snapshot(), model.name),
};

start();
