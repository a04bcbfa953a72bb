// The model bundle in JavaScript (docs/bundle.md): load + verify model.json, weights.safetensors and
// the ONNX graphs, build the head for C classes, and adapt + predict exactly as the Python reference
// (bundle/reader.py, Bundle.adapt), with the open-set score ("none of these", open_set.js) when
// model.json has one. The onnxruntime namespace is passed in, so the same code runs in the page's
// Web Worker (onnxruntime-web) and under Node in the tests.
import { Cancelled } from "./cancelled.js";
import {
  FEATURES_OUTPUT, manifestProblem, queryScoreInputs, referenceImages, referenceStatistics, taskSetting, threshold, unknownScores,
} from "./open_set.js";

export const FORMAT = "reptile-bundle";
export const FORMAT_VERSION = 1;
export const SUPPORTED_SPEC_VERSIONS = [1]; // web/js/preprocess.js implements preprocessing spec v1
const ADAM_V = "adam_v.";
const UPDATED = "updated.";
const HEAD_RULE = "trained-rows-cycled";

export class BundleError extends Error {
  constructor(message) {
    super(message);
    this.name = "BundleError";
  }
}

export async function sha256Hex(bytes) {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

// safetensors: u64 little-endian header length, a JSON header, then the raw data.
export function parseSafetensors(buffer) {
  const bytes = buffer instanceof ArrayBuffer ? new Uint8Array(buffer) : buffer;
  if (bytes.byteLength < 8) throw new BundleError("weights: not a safetensors file (too short)");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > bytes.byteLength - 8) throw new BundleError("weights: safetensors header runs past the end");
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  const dataStart = 8 + headerLength;
  const tensors = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    if (entry.dtype !== "F32") throw new BundleError(`weights: ${name} is ${entry.dtype}, expected F32`);
    const [begin, end] = entry.data_offsets;
    const count = entry.shape.reduce((a, b) => a * b, 1);
    if (end - begin !== count * 4 || dataStart + end > bytes.byteLength) {
      throw new BundleError(`weights: ${name} has a bad size or offset`);
    }
    // slice() copies into a fresh, 4-byte aligned buffer (the data section need not be aligned)
    // (Uint8Array's slice, not a Node Buffer's, which would return a view)
    const copy = Uint8Array.prototype.slice.call(bytes, dataStart + begin, dataStart + end);
    tensors[name] = { shape: entry.shape, data: new Float32Array(copy.buffer) };
  }
  return tensors;
}

// The head for `classes` classes (rule trained-rows-cycled: row i is trained row i mod trainedWays),
// for parameters and Adam v alike.
export function buildHead(weight, bias, classes, trainedWays) {
  const features = weight.length / trainedWays;
  const headWeight = new Float32Array(classes * features);
  const headBias = new Float32Array(classes);
  for (let r = 0; r < classes; r++) {
    const source = r % trainedWays;
    headWeight.set(weight.subarray(source * features, (source + 1) * features), r * features);
    headBias[r] = bias[source];
  }
  return [headWeight, headBias];
}

const yieldToEvents = (() => {
  // A MessageChannel round trip lets queued messages (a newer request, a Stop) be handled between
  // steps without setTimeout's 4 ms clamping.
  if (typeof MessageChannel === "undefined") return () => new Promise((resolve) => setTimeout(resolve, 0));
  const channel = new MessageChannel();
  const waiting = [];
  channel.port1.onmessage = () => waiting.shift()?.();
  return () => new Promise((resolve) => {
    waiting.push(resolve);
    channel.port2.postMessage(0);
  });
})();

export class Model {
  // ort: the onnxruntime-web namespace; manifest: model.json; tensors: parsed safetensors;
  // session(name) -> Promise of the graph's InferenceSession (created on first use).
  constructor(ort, manifest, tensors, session) {
    this.ort = ort;
    this.manifest = manifest;
    this.tensors = tensors;
    this.session = session;
    this.paramNames = manifest.architecture.parameters.map((p) => p.name);
    this.paramShapes = Object.fromEntries(manifest.architecture.parameters.map((p) => [p.name, p.shape]));
    this.trainedWays = manifest.trained_ways;
    this.references = null; // the open-set bank as model inputs, Float32Array [R * 784] (load sets it)
  }

  // base: URL of the bundle folder ending in "/"; fetchBytes(url) -> Uint8Array (fetch by default).
  // ort may be a Promise (the runtime still loading). Every file's sha256 is checked before use.
  // The graphs the default adaptation needs (predict and the default optimizer's step) are compiled
  // as soon as they arrive -- the first one also starts the WebAssembly runtime, the slowest part
  // of a cold start -- while the weights download; another graph is fetched when first used.
  static async load(ort, base, { fetchBytes = defaultFetchBytes, sessionOptions = {} } = {}) {
    const fetchFile = async (manifest, file) => {
      const entry = manifest.files[file];
      if (!entry) throw new BundleError(`model.json has no sha256 for ${file}`);
      const bytes = await fetchBytes(new URL(file, base).href);
      const actual = await sha256Hex(bytes);
      if (actual !== entry.sha256) {
        throw new BundleError(`${file} does not match its sha256 in model.json (expected ${entry.sha256}, got ${actual}): ` +
          "a stale cache or a corrupted download; reload the page");
      }
      return bytes;
    };
    const manifest = JSON.parse(new TextDecoder().decode(await fetchBytes(new URL("model.json", base).href)));
    Model.checkManifest(manifest);
    const runtime = Promise.resolve(ort);
    // No graph optimization: the exported graphs are already lean (training/onnx_graphs.py), so onnxruntime's
    // passes gained nothing per step, while running them (in a runtime V8 compiles lazily, function by
    // function, on first call) cost ~0.2 s of every cold start (benchmarks/browser_cold_start.py, docs/web.md).
    const options = { executionProviders: ["wasm"], graphOptimizationLevel: "disabled", ...sessionOptions };
    const sessions = {};
    const session = (name) => {
      if (!sessions[name]) {
        if (!manifest.graphs[name]) return Promise.reject(new BundleError(`the bundle has no ${name} graph`));
        sessions[name] = Promise.all([runtime, fetchFile(manifest, manifest.graphs[name].file)])
          .then(([o, bytes]) => o.InferenceSession.create(bytes, options));
        sessions[name].catch(() => delete sessions[name]); // a failed load may be retried
      }
      return sessions[name];
    };
    const first = ["predict", `train_step_${manifest.adaptation.optimizer}`];
    first.forEach(session);
    const bank = manifest.open_set?.references; // the open-set score's reference drawings (open_set.js)
    const [weights, bytes] = await Promise.all([fetchFile(manifest, manifest.weights.file), bank && fetchFile(manifest, bank.file)]);
    const model = new Model(await runtime, manifest, parseSafetensors(weights), session);
    if (bank) {
      const needed = bank.shape.reduce((a, b) => a * b, 1);
      if (bytes.length !== needed) throw new BundleError(`${bank.file}: ${bytes.length} bytes, its shape [${bank.shape}] needs ${needed}`);
      model.references = referenceImages(bytes);
    }
    model.checkWeights();
    await Promise.all(first.map(session));
    return model;
  }

  static checkManifest(manifest) {
    if (!manifest || manifest.format !== FORMAT) throw new BundleError("model.json is not a reptile-bundle manifest");
    if (manifest.format_version !== FORMAT_VERSION) {
      throw new BundleError(`model.json has format version ${manifest.format_version}; this page understands ${FORMAT_VERSION}`);
    }
    const spec = manifest.input?.preprocessing_spec;
    if (!SUPPORTED_SPEC_VERSIONS.includes(spec)) {
      throw new BundleError(`the model needs preprocessing spec ${spec}; this page implements ${SUPPORTED_SPEC_VERSIONS.join(", ")}`);
    }
    if (manifest.head_extension && manifest.head_extension.rule !== HEAD_RULE) {
      throw new BundleError(`unknown head rule ${manifest.head_extension.rule}`);
    }
    const problem = manifestProblem(manifest, "model.json");
    if (problem) throw new BundleError(problem);
  }

  checkWeights() {
    for (const name of this.paramNames) {
      const want = this.paramShapes[name].map((d) => (d === "C" ? this.trainedWays : d));
      for (const key of [name, ADAM_V + name]) {
        const tensor = this.tensors[key];
        if (!tensor) throw new BundleError(`the weights lack ${key}`);
        if (tensor.shape.join(",") !== want.join(",")) {
          throw new BundleError(`${key} has shape [${tensor.shape}], expected [${want}]`);
        }
      }
    }
  }

  // A comparison start ("Compare with", docs/web.md): another bundle of this model's architecture
  // and graphs, e.g. joint training's or a random initialization's. Only its model.json and weights
  // are fetched (the weights' sha256 checked against that model.json); it runs on this model's
  // sessions, so its graphs must take and give exactly what this model's do.
  async loadStart({ manifest: manifestUrl, weights: weightsUrl }, { fetchBytes = defaultFetchBytes } = {}) {
    const manifest = JSON.parse(new TextDecoder().decode(await fetchBytes(manifestUrl)));
    Model.checkManifest(manifest);
    const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
    const differs = same(manifest.architecture?.parameters, this.manifest.architecture.parameters)
      ? Object.keys(this.manifest.graphs).find((g) => !same(manifest.graphs?.[g]?.inputs, this.manifest.graphs[g].inputs)
        || !same(manifest.graphs?.[g]?.outputs, this.manifest.graphs[g].outputs))
      : "parameters";
    if (differs) {
      const what = differs === "parameters" ? "parameters differ" : `${differs} graph differs`;
      throw new BundleError(`${manifest.name}: its ${what} from ${this.manifest.name}'s, so it cannot run on those graphs`);
    }
    const entry = manifest.files?.[manifest.weights?.file];
    if (!entry) throw new BundleError(`${manifest.name}'s model.json has no sha256 for its weights`);
    const bytes = await fetchBytes(weightsUrl);
    if ((await sha256Hex(bytes)) !== entry.sha256) {
      throw new BundleError(`${manifest.name}'s weights do not match their sha256: a stale cache or a corrupted download; reload the page`);
    }
    const start = new Model(this.ort, manifest, parseSafetensors(bytes), this.session);
    start.checkWeights();
    return start;
  }

  get defaults() {
    return this.manifest.adaptation;
  }

  // model.json's open-set section (checked by checkManifest), or null when the bundle has none.
  get openSet() {
    return this.manifest.open_set ?? null;
  }

  shape(name, classes) {
    return this.paramShapes[name].map((d) => (d === "C" ? classes : d));
  }

  // -> {params, v, t}: the meta-trained state with the head built for `classes` classes.
  initialState(classes) {
    const params = {};
    const v = {};
    for (const name of this.paramNames) {
      params[name] = this.tensors[name].data;
      v[name] = this.tensors[ADAM_V + name].data;
    }
    const [headW, headB] = this.paramNames.slice(-2);
    for (const state of [params, v]) {
      [state[headW], state[headB]] = buildHead(state[headW], state[headB], classes, this.trainedWays);
    }
    return { params, v, t: this.manifest.weights.adam_t };
  }

  tensor(data, dims) {
    return new this.ort.Tensor("float32", data, dims);
  }

  paramFeeds(params, classes, prefix = "") {
    const feeds = {};
    for (const name of this.paramNames) feeds[prefix + name] = this.tensor(params[name], this.shape(name, classes));
    return feeds;
  }

  // images: Float32Array [B * 784] -> {logits, probabilities} as Float32Array [B * C], and with
  // features = true every block's output, Float32Array [B * D] (bundles with an open-set score)
  async predict(params, images, batch, classes, features = false) {
    const feeds = { ...this.paramFeeds(params, classes), images: this.tensor(images, [batch, 1, 28, 28]) };
    const wanted = ["logits", "probabilities", ...(features ? [FEATURES_OUTPUT] : [])];
    const out = await (await this.session("predict")).run(feeds, wanted);
    return { logits: out.logits.data, probabilities: out.probabilities.data, features: out[FEATURES_OUTPUT]?.data ?? null };
  }

  // One training step on the whole batch; returns the new state and the loss before the step.
  async step(state, images, labels, batch, classes, { optimizer, lr, eps }) {
    const feeds = {
      ...this.paramFeeds(state.params, classes),
      images: this.tensor(images, [batch, 1, 28, 28]),
      labels: new this.ort.Tensor("int64", BigInt64Array.from(labels, (l) => BigInt(l)), [batch]),
      lr: this.tensor(new Float32Array([lr]), []),
    };
    if (optimizer === "adam") {
      Object.assign(feeds, this.paramFeeds(state.v, classes, ADAM_V));
      feeds.t = this.tensor(new Float32Array([state.t + 1]), []);
      feeds.eps = this.tensor(new Float32Array([eps]), []);
    }
    const out = await (await this.session(optimizer === "adam" ? "train_step_adam" : "train_step_sgd")).run(feeds);
    const params = {};
    const v = {};
    for (const name of this.paramNames) {
      params[name] = out[UPDATED + name].data;
      if (optimizer === "adam") v[name] = out[UPDATED + ADAM_V + name].data;
    }
    return { state: { params, v: optimizer === "adam" ? v : state.v, t: state.t + 1 }, loss: out.loss.data[0] };
  }

  // The task's settings with the model's defaults filled in, and the support set as one batch.
  task({ support, labels, queries, classes = null, steps, lr, optimizer, transductive, eps }) {
    const d = this.defaults;
    classes = classes ?? Math.max(...labels) + 1;
    if (support.length < 2) throw new RangeError("need at least 2 support drawings (BatchNorm uses batch statistics)");
    if (queries.length < 1) throw new RangeError("need at least one test drawing");
    transductive = transductive ?? d.transductive;
    if (transductive && queries.length < 2) throw new RangeError("transductive prediction needs at least 2 test drawings");
    const images = new Float32Array(support.length * 784);
    support.forEach((image, i) => {
      images.set(image, i * 784);
    });
    return { images, batch: support.length, labels, queries, classes, steps: steps ?? d.steps, transductive,
      rule: { optimizer: optimizer ?? d.optimizer, lr: lr ?? d.lr, eps: eps ?? this.manifest.optimizers.adam.eps } };
  }

  // The adaptation: yields {state, k, loss} after each step k (0-based); shouldStop() is checked
  // before every step (throws Cancelled).
  async *steps(task, state, shouldStop) {
    for (let k = 0; k < task.steps; k++) {
      if (shouldStop && (await shouldStop())) throw new Cancelled();
      const result = await this.step(state, task.images, task.labels, task.batch, task.classes, task.rule);
      state = result.state;
      yield { state, k, loss: result.loss };
    }
  }

  // support: Float32Array[] (784 each), labels: int[], queries: Float32Array[]; as Bundle.adapt.
  // onStep(k, loss) after each step; shouldStop() is checked between steps (throws Cancelled).
  // -> {probabilities, logits, predictions, losses, unknownScores (numbers), unknown (booleans), ...};
  // unknownScores and unknown are null without an open-set section (comparison starts have none).
  async adapt({ onStep = null, shouldStop = null, ...settings }) {
    const task = this.task(settings);
    const { images, batch, labels, queries, classes, transductive } = task;
    let state = this.initialState(classes);
    const losses = [];
    const started = performance.now();
    for await (const done of this.steps(task, state, shouldStop)) {
      state = done.state;
      losses.push(done.loss);
      if (onStep) onStep(done.k, done.loss);
    }
    if (shouldStop && (await shouldStop())) throw new Cancelled();
    const section = this.openSet;
    let probabilities;
    let logits;
    let each = null; // the per-query batches (support rows, then the query)
    if (!transductive || section) each = await this.predictEach(state.params, images, batch, queries, labels, classes, section);
    if (transductive) ({ probabilities, logits } = await this.predictTogether(state.params, queries, classes));
    else ({ probabilities, logits } = each);
    // the score always reads the non-transductive batches: its thresholds were fitted on them
    const scores = section ? unknownScores(each.scoreInputs, section) : null;
    const limit = section ? threshold(section, taskSetting(labels, classes)) : null;
    const predictions = probabilities.map((p) => p.indexOf(Math.max(...p)));
    return { probabilities, logits, predictions, losses, elapsedMs: performance.now() - started,
      unknownScores: scores, unknown: scores ? scores.map((s) => s > limit) : null,
      settings: { steps: task.steps, ...task.rule, transductive, start: this.manifest.name } };
  }

  // The same adaptation as adapt(), replayed with the queries' probabilities before the first step and
  // after each one (the page's "Adaptation step"): -> [steps + 1][queries][classes]. A replay rather than
  // a record kept by adapt(), so the prediction the page waits for costs nothing more; it repeats
  // adapt()'s computation exactly, so its last entry is adapt()'s probabilities.
  async trace({ shouldStop = null, ...settings }) {
    const task = this.task(settings);
    const { images, batch, queries, classes, transductive } = task;
    const probabilities = async (params) => (transductive
      ? await this.predictTogether(params, queries, classes)
      : await this.predictEach(params, images, batch, queries, task.labels, classes, null)).probabilities;
    const state = this.initialState(classes);
    const trace = [await probabilities(state.params)];
    for await (const done of this.steps(task, state, shouldStop)) {
      if (shouldStop && (await shouldStop())) throw new Cancelled();
      trace.push(await probabilities(done.state.params));
    }
    return trace;
  }

  // All queries predicted in one batch (transductive) -> {probabilities, logits} per query.
  async predictTogether(params, queries, classes) {
    const all = new Float32Array(queries.length * 784);
    queries.forEach((q, i) => {
      all.set(q, i * 784);
    });
    const out = await this.predict(params, all, queries.length, classes);
    const row = (data, i) => Array.from(data.subarray(i * classes, (i + 1) * classes));
    return { probabilities: queries.map((_, i) => row(out.probabilities, i)), logits: queries.map((_, i) => row(out.logits, i)) };
  }

  // Each query predicted in one batch with the support set (its row last) -> {probabilities, logits}
  // of the queries' rows, and with an open-set section each query's score inputs (open_set.js).
  async predictEach(params, images, batch, queries, labels, classes, section) {
    const blocks = this.manifest.architecture.feature_blocks;
    let reference = null;
    if (section && this.references) { // the bank: one batch with the support set
      const count = this.references.length / 784;
      const withBank = new Float32Array((batch + count) * 784);
      withBank.set(images);
      withBank.set(this.references, batch * 784);
      const out = await this.predict(params, withBank, batch + count, classes, true);
      reference = referenceStatistics(out.features, labels, classes, blocks, count);
    }
    const withQuery = new Float32Array((batch + 1) * 784);
    withQuery.set(images);
    const probabilities = [];
    const logits = [];
    const scoreInputs = [];
    for (const query of queries) {
      withQuery.set(query, batch * 784);
      const out = await this.predict(params, withQuery, batch + 1, classes, Boolean(section));
      probabilities.push(Array.from(out.probabilities.subarray(batch * classes)));
      logits.push(Array.from(out.logits.subarray(batch * classes)));
      if (section) {
        scoreInputs.push(queryScoreInputs(out.features, probabilities.at(-1), labels, classes, blocks, reference));
      }
    }
    return { probabilities, logits, scoreInputs };
  }
}

export { yieldToEvents };

async function defaultFetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new BundleError(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}
