// The demo page's entry point: its state, and the wiring of the modules that make it up.
// The drawings (board.js) re-adapt after each stroke (newest request only) in the browser or on the
// server (adapters.js); loss chart, prediction bars (results.js) and the step they show
// (adaptation_step.js), save / load / share (share.js), embed messages (embed.js), projector mode,
// offline use (offline.js). Configuration comes from the page's #demo[data-config] (read by
// startup.js): no inline script.
import { StepSlider } from "./adaptation_step.js";
import { Scheduler, ServerAdapter } from "./adapters.js";
import { Board, MAX_TESTS } from "./board.js";
import { LossChart } from "./chart.js";
import { $ } from "./dom.js";
import { toDocument } from "./drawings.js";
import { postHeightChanges, postPrediction, setupEmbedSnippet, startWhenVisible } from "./embed.js";
import { afterPrediction, startServiceWorker } from "./offline.js";
import { announcePrediction, renderPredictions } from "./results.js";
import { Settings } from "./settings.js";
import { restoreFromLink, setupSaveLoadShare } from "./share.js";
import { browser, config, root, urls } from "./startup.js";
import { formatMs, setStatus, showBackoff, showStep } from "./status.js";

const model = config.model || {};
const embed = Boolean(config.embed);
const staticSite = Boolean(config.static);
const limits = {
  minClasses: model.classes?.min ?? 2,
  maxClasses: model.classes?.max ?? 10,
  minShots: model.shots?.min ?? 1,
  maxShots: model.shots?.max ?? 5,
  maxSteps: model.limits?.max_steps ?? 500,
  maxTests: MAX_TESTS,
};

// ------------------------------------------------------------------ state
// The page's own state: the drawings live in the Board, the adaptation settings in Settings.
const state = {
  started: !embed, // an embedded demo starts when scrolled into view
  lastResult: null, // the newest adaptation's result, shown as bars
  adaptations: 0,
  metrics: [], // per adaptation: where, timings, sizes (window.reptileDemo.metrics)
};

const server = staticSite ? null : new ServerAdapter(urls.api);
const adapterFor = (mode) => (mode === "server" ? server : browser);
const chart = new LossChart($("#chart"));
const showPredictions = () => renderPredictions(state.lastResult, board.classes, board.tests, slider.step);
const slider = new StepSlider(showPredictions);
const board = new Board({ limits, shots: config.settings.shots, onEdit: schedule, redrawPredictions: showPredictions });
const settings = new Settings({
  mode: staticSite ? "browser" : config.settings.mode,
  steps: model.adaptation?.steps || 100,
  optimizer: model.adaptation?.optimizer ?? "adam",
  lr: model.adaptation?.lr ?? 0.001,
  transductive: model.adaptation?.transductive ?? false,
  limits,
  maxLr: model.limits?.max_lr ?? 1,
  comparisons: model.comparisons ?? {},
  accuracy: model.accuracy,
  staticSite,
  onChange: () => schedule(),
});

// The page's URL may set what the page also offers: ?steps=N, ?optimizer=adam|sgd, ?lr=X,
// ?transductive=1, ?compare=none|joint|random and ?step=K (the adaptation step the bars show).
function settingsFromUrl() {
  const query = new URLSearchParams(location.search);
  const number = (name) => (query.has(name) ? Number(query.get(name)) : undefined);
  const flag = query.get("transductive");
  return { steps: number("steps"), optimizer: query.get("optimizer") ?? undefined, lr: number("lr"),
    transductive: flag === null ? undefined : flag === "1" || flag === "true", compare: query.get("compare") ?? undefined,
    step: number("step") };
}

// The drawings and settings, as drawings.js's toDocument() takes them (a save file, a share link).
function snapshot() {
  return { settings: { shots: board.shots, ...settings.values(), step: slider.chosen }, ...board.strokes() };
}

// saved: fromDocument()'s reading of a save file or a share link (or the URL's settings alone)
function restore(saved) {
  settings.apply(saved.settings);
  if (saved.settings.step !== undefined) slider.choose(saved.settings.step);
  if (saved.classes) board.restore(saved);
}

// ------------------------------------------------------------------ adaptation
// Adapt to the drawings as they are (penUp: when the stroke that changed them ended), once every
// class has an example and a test drawing is drawn in.
function schedule(penUp = performance.now()) {
  if (!state.started) return;
  const task = board.task();
  if (task.missing.length) {
    scheduler.stop();
    const which = task.missing.length === 1 ? `class ${task.missing[0]}` : `classes ${task.missing.join(", ")}`;
    setStatus(`Draw an example of ${which} to adapt the model.`, "waiting");
    return;
  }
  if (!task.queries.length) {
    scheduler.stop();
    setStatus("Draw something in the test area to see what the model thinks it is.", "waiting");
    showPredictions();
    return;
  }
  const browserMode = settings.mode === "browser";
  scheduler.submit(adapterFor(settings.mode), {
    support: task.support, labels: task.labels, queries: task.queries, classes: task.classes, steps: settings.steps,
    optimizer: settings.optimizer, lr: settings.lr,
    // transductive prediction needs two test drawings or more: with one, it is classified as usual
    transductive: settings.transductive && task.queries.length >= 2,
    compare: browserMode ? settings.comparison : null, compareWith: browserMode ? settings.compare : "none",
    queryIndex: task.queryIndex, triggeredAt: penUp || performance.now(), names: board.classes.map((c) => c.name),
  });
}

const scheduler = new Scheduler({
  started(request, adapter) {
    chart.reset(request.steps);
    const where = adapter.place === "server" ? "on the server" : browser.info ? "in your browser"
      : "in your browser (loading the model and WebAssembly runtime the first time)";
    setStatus(`Adapting ${where}…`, "running");
    root.classList.add("busy");
  },
  step(which, k, loss) {
    chart.add(which, k, loss);
    if (which === "meta" && (k % 10 === 9 || k === 0)) showStep(k + 1, chart.steps);
  },
  backoff(_request, until, adapter) {
    root.classList.remove("busy");
    showBackoff(until);
    settings.offerTheOtherPlace(adapter.place); // switching takes effect at once, the wait is dropped
  },
  done(request, result, adapter) {
    root.classList.remove("busy");
    state.adaptations++;
    state.lastResult = { ...result, queryIndex: request.queryIndex, names: request.names, place: adapter.place,
      compareWith: request.compareWith, trace: null };
    chart.set("meta", result.losses);
    if (result.compare) chart.set("compare", result.compare.losses);
    showLegend(result.compare ? request.compareWith : "none");
    slider.reset(result.losses.length);
    showPredictions();
    const shownAt = performance.now();
    const total = shownAt - request.triggeredAt;
    const where = adapter.describe();
    const compute = adapter.place === "server" ? `; ${Math.round(result.elapsedMs)} ms of it computing` : "";
    setStatus(`Adapted in ${formatMs(total)} ${where}: ${result.losses.length} steps${compute}.`, "done");
    state.metrics.push({ place: adapter.place, triggeredAt: request.triggeredAt, shownAt, totalMs: total,
      computeMs: result.computeMs, serverMs: adapter.place === "server" ? result.elapsedMs : null,
      steps: result.losses.length, support: request.support.length, classes: request.classes,
      threads: browser.info?.numThreads });
    root.dataset.adaptations = String(state.adaptations);
    announcePrediction(result, request);
    postPrediction(result, request);
    afterPrediction(adapter === browser);
    settings.hideOffer();
  },
  stopped() {
    root.classList.remove("busy");
    setStatus("Stopped. The next stroke adapts again.", "stopped");
  },
  failed(_request, error, adapter) {
    root.classList.remove("busy");
    const place = adapter.place === "server" ? "on the server" : "in your browser";
    setStatus(`Adapting ${place} failed: ${error.message}`, "error");
    settings.offerTheOtherPlace(adapter.place);
  },
});

// Each browser result's replay (the probabilities before the first step and after each one) follows
// it from the worker: the "Adaptation step" slider can then show any step.
browser.onTrace = (id, trace) => {
  if (!trace || state.lastResult?.id !== id) return;
  state.lastResult.trace = trace;
  slider.replayArrived();
  root.dataset.replays = String(Number(root.dataset.replays || 0) + 1);
  if (slider.step !== null) showPredictions();
};

function showLegend(compareWith) {
  $("#compare-legend").hidden = compareWith === "none";
  $("#compare-legend-text").textContent = compareWith === "joint" ? "joint-training start" : "random start";
}

// ------------------------------------------------------------------ controls
$("#stop").addEventListener("click", () => scheduler.stop());
$("#clear-all").addEventListener("click", () => {
  board.clear();
  state.lastResult = null;
  showPredictions();
  chart.reset(settings.steps);
  setStatus("Cleared. Draw an example of every class, then a test drawing.", "idle");
  scheduler.stop();
});
const showModelBox = $("#show-model");
showModelBox.addEventListener("change", () => {
  root.classList.toggle("show-model", showModelBox.checked);
  board.showModelViews(showModelBox.checked);
});

setupSaveLoadShare({ savedDocument: () => toDocument(snapshot(), model.name), restore, limits, onLoaded: () => schedule() });

const projectorButton = $("#projector");
if (projectorButton) {
  projectorButton.addEventListener("click", () => {
    const on = !document.documentElement.classList.contains("projector");
    document.documentElement.classList.toggle("projector", on);
    projectorButton.setAttribute("aria-pressed", String(on));
    for (const d of board.drawings()) d.pad.resize(); // the drawing areas change size
  });
}

setupEmbedSnippet();
postHeightChanges();

// ------------------------------------------------------------------ start
async function start() {
  settings.show();
  // startup.js has begun loading the browser runtime, if the page opens in browser mode
  restore({ settings: settingsFromUrl() });
  await board.loadExamples(urls.examples);
  if (!(await restoreFromLink(restore, limits))) board.loadPresets(config.settings.classes);
  root.dataset.ready = "true";
  if (embed) {
    setStatus("The demo starts when it scrolls into view.", "idle");
    startWhenVisible(root, () => {
      state.started = true;
      schedule();
    });
  } else {
    schedule();
  }
  // Offline use waits for the first prediction (or 10 s): installing the service worker and caching
  // what the page loaded would compete with the first adaptation for the CPU.
  setTimeout(startServiceWorker, 10_000);
}

// For tests, benchmarks and the curious: read-only views of the state.
window.reptileDemo = {
  get metrics() { return state.metrics; },
  get lastResult() { return state.lastResult; },
  get adaptations() { return state.adaptations; },
  get runtime() { return browser.info; },
  modelInputs: () => board.modelInputs(),
  snapshot: () => toDocument(snapshot(), model.name),
};

start();
