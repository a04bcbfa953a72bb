// The adaptation worker (a module Web Worker): onnxruntime-web's wasm build, loaded lazily on the
// first "init", the bundle verified; then "adapt" requests, of which only the newest
// runs: a newer request or a "cancel" stops the running one between two steps.
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

async function init({ ortUrl, wasmPaths, modelBase, fileUrls, threads }) {
  const started = performance.now();
  const fetchBytes = async (url) => {
    const name = new URL(url).pathname.split("/").pop();
    const response = await fetch(fileUrls?.[name] ? fileUrls[name] : url);
    if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
    return new Uint8Array(await response.arrayBuffer());
  };
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

// -> {meta, random?}: each run's result as Model.adapt returns it (probabilities, losses, and the
// open-set unknownScores and unknown, null for the random start), relayed to the page as they are.
async function adapt(message) {
  const { id } = message;
  const shouldStop = async () => {
    await yieldToEvents(); // lets a newer request or a cancel arrive
    return cancelled.has(id) || newest !== id;
  };
  const runs = [{ which: "meta", init: "meta" }];
  if (message.compare) runs.push({ which: "random", init: "random" });
  const results = {};
  for (const run of runs) {
    results[run.which] = await model.adapt({
      support: message.support, labels: message.labels, queries: message.queries, classes: message.classes,
      steps: message.steps, lr: message.lr, init: run.init, seed: message.seed || 1, shouldStop,
      onStep: (k, loss) => self.postMessage({ type: "step", id, which: run.which, k, loss }),
    });
  }
  return results;
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
      const started = performance.now();
      const results = await adapt(message);
      self.postMessage({ type: "result", id: message.id, results, elapsedMs: performance.now() - started, info });
    } catch (error) {
      if (error instanceof Cancelled) self.postMessage({ type: "cancelled", id: message.id });
      else self.postMessage({ type: "error", id: message.id, message: String(error?.message || error) });
    } finally {
      cancelled.delete(message.id);
      done();
    }
  }
};
