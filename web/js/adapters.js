// Where adaptation runs: in the browser (a Web Worker with onnxruntime-web) or on the server
// (POST /api/adapt). Both take the same request and report per-step losses and the result.
// The Scheduler keeps only the newest request: a new one stops the running one (at its next step
// in the worker, by aborting the fetch for the server) and replaces any waiting one. The server
// adapter honours a busy server's Retry-After: no request leaves before the time it asked for.
import { Cancelled } from "./cancelled.js";

export class BrowserAdapter {
  // urls: {worker, ort, ortWasm, ortMjs, modelBase, files}
  constructor(urls) {
    this.urls = urls;
    this.worker = null;
    this.ready = null;
    this.info = null;
    this.nextId = 1;
    this.pending = new Map(); // id -> {resolve, reject, onStep}
    this.place = "browser";
    this.onTrace = null; // (id, trace or null): each result's step-by-step probabilities, which follow it
  }

  // Lazy: the worker, the runtime and the model are fetched on the first call.
  load() {
    if (this.ready) return this.ready;
    this.ready = new Promise((resolve, reject) => {
      let worker;
      try {
        worker = new Worker(this.urls.worker, { type: "module", name: "reptile-adapt" });
      } catch (error) {
        reject(error);
        return;
      }
      this.worker = worker;
      worker.onmessage = (event) => this.message(event.data, resolve, reject);
      worker.onerror = (event) => {
        event.preventDefault();
        const error = new Error(`the adaptation worker failed: ${event.message || "could not load it"}`);
        reject(error);
        for (const entry of this.pending.values()) entry.reject(error);
        this.pending.clear();
      };
      worker.postMessage({ type: "init", ortUrl: this.urls.ort, wasmPaths: { wasm: this.urls.ortWasm, mjs: this.urls.ortMjs },
        modelBase: this.urls.modelBase, fileUrls: this.urls.files, threads: this.urls.threads || null });
    });
    this.ready.catch(() => {
      this.ready = null; // a later call may try again
      if (this.worker) this.worker.terminate();
      this.worker = null;
    });
    return this.ready;
  }

  message(data, resolve, reject) {
    if (data.type === "ready") {
      this.info = data.info;
      resolve(data.info);
      return;
    }
    if (data.type === "init-error") {
      reject(new Error(data.message));
      return;
    }
    if (data.type === "trace" || data.type === "trace-error") {
      this.onTrace?.(data.id, data.trace ?? null); // after the result: see app.js
      return;
    }
    const entry = this.pending.get(data.id);
    if (!entry) return;
    if (data.type === "step") entry.onStep(data.which, data.k, data.loss);
    else {
      this.pending.delete(data.id);
      const { meta, compare } = data.results ?? {};
      if (data.type === "result") entry.resolve({ ...meta, compare: compare || null, computeMs: data.elapsedMs, id: data.id });
      else if (data.type === "cancelled") entry.reject(new Cancelled());
      else entry.reject(new Error(data.message));
    }
  }

  // request: {support, labels, queries, classes, steps, lr, optimizer, transductive, compare (null or a
  // comparison start's {name, manifest, weights} URLs)}; -> {run: Promise, cancel()}
  start(request, onStep) {
    const id = this.nextId++;
    let cancelled = false;
    let posted = false;
    const run = this.load().then(() => new Promise((resolve, reject) => {
      if (cancelled) {
        reject(new Cancelled());
        return;
      }
      this.pending.set(id, { resolve, reject, onStep });
      this.worker.postMessage({ type: "adapt", id, ...request });
      posted = true;
    }));
    const cancel = () => {
      cancelled = true;
      if (posted && this.worker) this.worker.postMessage({ type: "cancel", id });
    };
    return { run, cancel };
  }

  describe() {
    if (!this.info) return "in your browser";
    const threads = this.info.numThreads > 1 ? `${this.info.numThreads} threads` : "1 thread";
    return `in your browser (WebAssembly, ${threads})`;
  }
}

// A busy server (503 or 429 with Retry-After) is waited for, at most MAX_BACKOFF_MS whatever it
// asks; a request waits at most MAX_BACKOFFS times, then fails (and the page offers the browser).
export const MAX_BACKOFF_MS = 60_000;
const MAX_BACKOFFS = 3;

// An HTTP-date (IMF-fixdate, RFC 850 or asctime; always GMT, which asctime does not spell) -> ms since
// the epoch; NaN if it is none.
const httpDate = (text) => (/^[a-z]{3}/i.test(text) ? Date.parse(`${text.replace(/\s*GMT$/i, "")} GMT`) : Number.NaN);

// Retry-After, in delta-seconds or as an HTTP-date (read against the answer's own Date where it has
// one, so a client clock that is off does not matter) -> the ms to wait; null if absent or unreadable.
export function retryAfterMs(value, date = null) {
  const text = (value || "").trim();
  let ms;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else if (!Number.isNaN(httpDate(text))) {
    const now = httpDate((date || "").trim());
    ms = httpDate(text) - (Number.isNaN(now) ? Date.now() : now);
  } else return null;
  return Math.min(Math.max(ms, 0), MAX_BACKOFF_MS);
}

// Resolves after ms, or rejects with Cancelled as soon as signal aborts.
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new Cancelled());
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", abort);
      resolve();
    }, ms);
    function abort() {
      clearTimeout(timer);
      reject(new Cancelled());
    }
    signal.addEventListener("abort", abort, { once: true });
  });
}

export class ServerAdapter {
  constructor(apiUrl) {
    this.url = `${apiUrl.replace(/\/$/, "")}/adapt`;
    this.place = "server";
    this.notBefore = 0; // no request leaves before this time (performance.now()), as the server asked
  }

  // onWait(until): the request waits for the server until `until` (performance.now()); onWait(null):
  // the wait is over and the request is sent. Callbacks come only after start() has returned.
  start(request, onStep, onWait = () => {}) {
    const controller = new AbortController();
    const rows = (image) => Array.from({ length: 28 }, (_, r) => Array.from(image.subarray(r * 28, r * 28 + 28)));
    const body = {
      support: request.support.map((image, i) => ({ image: rows(image), label: request.labels[i] })),
      query: request.queries.map((image) => ({ image: rows(image) })),
    };
    if (request.steps != null) body.steps = request.steps;
    if (request.lr != null) body.lr = request.lr;
    if (request.optimizer != null) body.optimizer = request.optimizer;
    if (request.transductive != null) body.transductive = request.transductive;
    const run = Promise.resolve().then(() => this.send(JSON.stringify(body), controller.signal, onStep, onWait));
    return { run, cancel: () => controller.abort() };
  }

  async send(body, signal, onStep, onWait) {
    for (let backoffs = 0; ; backoffs++) {
      await this.waitForServer(signal, onWait);
      const started = performance.now();
      const response = await fetch(this.url, { method: "POST", headers: { "Content-Type": "application/json" }, body,
        signal, credentials: "same-origin" }).catch((error) => {
        if (error.name === "AbortError") throw new Cancelled();
        throw new Error(`could not reach the server: ${error.message}`);
      });
      const data = await response.json().catch(() => ({}));
      if (signal.aborted) throw new Cancelled(); // stopped while the answer was being read
      if (response.ok) {
        data.losses.forEach((loss, k) => {
          onStep("meta", k, loss);
        });
        return { probabilities: data.probabilities, predictions: data.predictions, losses: data.losses,
          unknownScores: data.unknown_scores ?? null, unknown: data.unknown ?? null,
          elapsedMs: data.elapsed_ms, computeMs: performance.now() - started, compare: null };
      }
      const busy = response.status === 503 || response.status === 429;
      const wait = busy ? retryAfterMs(response.headers.get("Retry-After"), response.headers.get("Date")) : null;
      if (wait !== null) this.notBefore = Math.max(this.notBefore, performance.now() + wait);
      if (wait === null || backoffs === MAX_BACKOFFS) {
        throw new Error(`the server answered ${response.status}: ${data.detail || response.statusText}` +
          (wait !== null ? ` (retry after ${Math.ceil(wait / 1000)} s)` : ""));
      }
    }
  }

  // Until this.notBefore; a loop, because a timer may fire a little early.
  async waitForServer(signal, onWait) {
    if (signal.aborted) throw new Cancelled();
    if (this.notBefore <= performance.now()) return;
    onWait(this.notBefore);
    for (let left = this.notBefore - performance.now(); left > 0; left = this.notBefore - performance.now()) {
      await sleep(left, signal);
    }
    onWait(null);
  }

  describe() {
    return "on the server";
  }
}

export class Scheduler {
  // handlers: {started(request, adapter), step(which, k, loss), backoff(request, until, adapter),
  // done(request, result, adapter), stopped(request, adapter), failed(request, error, adapter)};
  // backoff: the server asked to wait until `until` (performance.now()), started follows when the
  // request is sent; stopped only after stop(), not when replaced
  constructor(handlers) {
    this.handlers = handlers;
    this.running = null;
    this.waiting = null;
  }

  submit(adapter, request) {
    this.waiting = { adapter, request };
    if (this.running) this.running.job.cancel();
    else this.pump();
  }

  stop() {
    this.waiting = null;
    if (this.running) {
      this.running.stoppedByUser = true;
      this.running.job.cancel();
    }
  }

  async pump() {
    while (this.waiting) {
      const { adapter, request } = this.waiting;
      this.waiting = null;
      const current = () => this.running && this.running.job === job;
      const job = adapter.start(request, (which, k, loss) => {
        if (current()) this.handlers.step(which, k, loss);
      }, (until) => {
        if (!current()) return;
        if (until === null) this.handlers.started(request, adapter);
        else this.handlers.backoff(request, until, adapter);
      });
      this.running = { job, request, stoppedByUser: false };
      this.handlers.started(request, adapter);
      try {
        const result = await job.run;
        if (!this.waiting) this.handlers.done(request, result, adapter);
      } catch (error) {
        if (error instanceof Cancelled) {
          if (this.running.stoppedByUser) this.handlers.stopped(request, adapter);
        } else if (!this.waiting) {
          this.handlers.failed(request, error, adapter);
        }
      }
      this.running = null;
    }
  }
}
