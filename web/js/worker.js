// The adaptation worker (a module Web Worker): onnxruntime-web's wasm build, loaded lazily on the
// first "init", the bundle verified; then "adapt" requests, of which only the newest
// runs: a newer request or a "cancel" stops the running one between two steps. After each result it
// replays the adaptation for the page's "Adaptation step" view ("trace"), unless a newer request or a
// cancel stops it, and it loads a comparison start ("Compare with") the first time one is asked for.
import { Cancelled } from "./cancelled.js";
import { Model, yieldToEvents } from "./engine.js";

let model = null;
let loading = null;
let info = null;
// The id of the newest adapt request received: older ones stop at their next step or never start.
// The page's Scheduler (adapters.js) already sends one request at a time and cancels the one it
// replaces; this check stays because after a worker error event the page gives up on its pending
// requests without cancelling them here, so a newer request can then arrive while an older one runs.
let newest = 0;
const cancelled = new Set();
let running = Promise.resolve();
const comparisonStarts = new Map(); // a comparison start's name -> the promise of its Model (loaded once)

function configure(ort, threads, wasmPaths) {
  const isolated = self.crossOriginIsolated === true;
  // Threads need SharedArrayBuffer, i.e. a cross-origin isolated page (COOP + COEP). Half the cores at
  // most, up to 4, unless `threads` is given: the page's own thread and the browser need the rest (on 2 cores, 1 thread
  // measured faster than 2: benchmarks/browser_adapt.py).
  const cores = navigator.hardwareConcurrency || 1;
  const wanted = threads ? Math.min(threads, cores) : Math.min(4, Math.floor(cores / 2));
  const numThreads = isolated ? Math.max(1, wanted) : 1;
  ort.env.wasm.numThreads = numThreads;
  ort.env.wasm.wasmPaths = wasmPaths;
  ort.env.logLevel = "error";
  return { ort, numThreads, isolated };
}

async function fetchFile(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${new URL(url).pathname.split("/").pop()}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function init({ ortUrl, wasmPaths, modelBase, fileUrls, threads }) {
  const started = performance.now();
  const fetchBytes = (url) => fetchFile(fileUrls?.[new URL(url).pathname.split("/").pop()] ?? url);
  const runtime = import(ortUrl).then((ort) => configure(ort, threads, wasmPaths));
  // the model downloads while the runtime loads
  const loaded = await Model.load(runtime.then((r) => r.ort), modelBase, { fetchBytes });
  const { ort, numThreads, isolated } = await runtime;
  const loadMs = performance.now() - started;
  // No warm-up run: the page adapts as soon as the model is ready, and that first adaptation warms
  // the engine up itself; a dummy run before it would only delay the first prediction
  // (benchmarks/browser_cold_start.py, docs/web.md).
  info = { numThreads, isolated, loadMs, ortVersion: ort.env.versions?.web,
    model: loaded.manifest.name, defaults: loaded.defaults,
    // what this worker fetched (itself, its modules, the runtime, the model): the page hands the list
    // to the service worker, which may not have seen these requests
    resources: [self.location.href, ...performance.getEntriesByType("resource").map((e) => e.name)] };
  model = loaded;
  return info;
}

// source: {name, manifest, weights} (URLs) -> the comparison start's Model, fetched on first use.
function comparisonStart(source) {
  if (!comparisonStarts.has(source.name)) {
    const loading = model.loadStart(source, { fetchBytes: fetchFile });
    loading.catch(() => comparisonStarts.delete(source.name)); // a failed load may be retried
    comparisonStarts.set(source.name, loading);
  }
  return comparisonStarts.get(source.name);
}

function settingsOf(message, shouldStop) {
  const { support, labels, queries, classes, steps, lr, optimizer, transductive } = message;
  return { support, labels, queries, classes, steps, lr, optimizer, transductive, shouldStop };
}

// -> {results: {meta, compare?}, starts}: each start's result as Model.adapt returns it (probabilities,
// losses, and the open-set unknownScores and unknown, null for a comparison start), relayed to the page
// as they are; starts: [which, Model] in that order. A comparison's weights download while the
// meta-learned model adapts.
async function adapt(message, shouldStop) {
  const comparison = message.compare ? comparisonStart(message.compare) : null;
  comparison?.catch(() => {}); // its failure is reported below, when awaited
  const run = (which) => ({ ...settingsOf(message, shouldStop),
    onStep: (k, loss) => self.postMessage({ type: "step", id: message.id, which, k, loss }) });
  const starts = [["meta", model]];
  const results = { meta: await model.adapt(run("meta")) };
  if (comparison) {
    const start = await comparison;
    results.compare = await start.adapt(run("compare"));
    starts.push(["compare", start]);
  }
  return { results, starts };
}

self.onmessage = async (event) => {
  const message = event.data;
  if (message.type === "init") {
    try {
      loading = loading || init(message);
      self.postMessage({ type: "ready", info: await loading });
    } catch (error) {
      loading = null;
      self.postMessage({ type: "init-error", message: String(error?.message || error) });
    }
  } else if (message.type === "cancel") {
    cancelled.add(message.id);
  } else if (message.type === "adapt") {
    newest = Math.max(newest, message.id);
    // One adaptation at a time (an onnxruntime session must not run twice at once): a newer request
    // waits for the running one to stop at its next step; requests replaced meanwhile are dropped unrun.
    const previous = running;
    let done;
    running = new Promise((resolve) => { done = resolve; });
    await previous;
    try {
      await loading;
      if (!model) throw new Error("the model is not loaded");
      if (newest !== message.id || cancelled.has(message.id)) throw new Cancelled();
      const shouldStop = async () => {
        await yieldToEvents(); // lets a newer request or a cancel arrive
        return cancelled.has(message.id) || newest !== message.id;
      };
      const started = performance.now();
      const { results, starts } = await adapt(message, shouldStop);
      self.postMessage({ type: "result", id: message.id, results, elapsedMs: performance.now() - started, info });
      // each start's probabilities before the first step and after each one, for the page's step view
      try {
        const trace = {};
        for (const [which, start] of starts) trace[which] = await start.trace(settingsOf(message, shouldStop));
        self.postMessage({ type: "trace", id: message.id, trace });
      } catch (error) {
        if (!(error instanceof Cancelled)) self.postMessage({ type: "trace-error", id: message.id, message: String(error?.message || error) });
      }
    } catch (error) {
      if (error instanceof Cancelled) self.postMessage({ type: "cancelled", id: message.id });
      else self.postMessage({ type: "error", id: message.id, message: String(error?.message || error) });
    } finally {
      cancelled.delete(message.id);
      done();
    }
  }
};
