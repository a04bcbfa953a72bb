// The model bundle in JavaScript (docs/bundle.md): load + verify model.json, weights.safetensors and
// the ONNX graphs, build the head for C classes, and adapt + predict exactly as the Python reference
// (bundle/reader.py, Bundle.adapt), with the open-set score ("none of these", open_set.js) when
// model.json has one. The onnxruntime namespace is passed in, so the same code runs in the page's
// Web Worker (onnxruntime-web) and under Node in the tests.
import { Cancelled } from "./cancelled.js";
import { FEATURES_OUTPUT, manifestProblem, queryScoreInputs, taskSetting, threshold, unknownScores } from "./open_set.js";

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

// A mulberry32 generator: the random initialisation of the comparison model is reproducible.
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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
    const tensors = parseSafetensors(await fetchFile(manifest, manifest.weights.file));
    const model = new Model(await runtime, manifest, tensors, session);
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

  // A random initialisation (PyTorch's defaults: conv/linear weights U(-b, b) with b = 1/sqrt(fan_in),
  // BatchNorm weight 1 and bias 0, linear bias U(-b, b)), Adam v = 0 and t = 0: "no meta-learning".
  randomState(classes, seed = 1) {
    const random = mulberry32(seed);
    const params = {};
    const v = {};
    for (const name of this.paramNames) {
      const shape = this.shape(name, classes);
      const size = shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(size);
      if (name.startsWith("bn") && name.endsWith(".weight")) data.fill(1);
      else if (name.startsWith("bn")) data.fill(0);
      else {
        const fanIn = name === "fc.bias" ? this.paramShapes["fc.weight"][1] : size / shape[0];
        const bound = 1 / Math.sqrt(fanIn);
        for (let i = 0; i < size; i++) data[i] = (random() * 2 - 1) * bound;
      }
      params[name] = data;
      v[name] = new Float32Array(size);
    }
    return { params, v, t: 0 };
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

  // support: Float32Array[] (784 each), labels: int[], queries: Float32Array[]; as Bundle.adapt.
  // onStep(k, loss) after each step; shouldStop() is checked between steps (throws Cancelled).
  // -> {probabilities, logits, predictions, losses, unknownScores (numbers), unknown (booleans), ...};
  // unknownScores and unknown are null without an open-set section, and for a random start.
  async adapt({ support, labels, queries, classes = null, steps, lr, optimizer, transductive, eps, init = "meta",
    seed = 1, onStep = null, shouldStop = null }) {
    const d = this.defaults;
    steps = steps ?? d.steps;
    lr = lr ?? d.lr;
    optimizer = optimizer ?? d.optimizer;
    transductive = transductive ?? d.transductive;
    eps = eps ?? this.manifest.optimizers.adam.eps;
    classes = classes ?? Math.max(...labels) + 1;
    if (support.length < 2) throw new RangeError("need at least 2 support drawings (BatchNorm uses batch statistics)");
    if (queries.length < 1) throw new RangeError("need at least one test drawing");
    if (transductive && queries.length < 2) throw new RangeError("transductive prediction needs at least 2 test drawings");
    const batch = support.length;
    const images = new Float32Array(batch * 784);
    support.forEach((image, i) => {
      images.set(image, i * 784);
    });
    let state = init === "random" ? this.randomState(classes, seed) : this.initialState(classes);
    const losses = [];
    const started = performance.now();
    for (let k = 0; k < steps; k++) {
      if (shouldStop && (await shouldStop())) throw new Cancelled();
      const result = await this.step(state, images, labels, batch, classes, { optimizer, lr, eps });
      state = result.state;
      losses.push(result.loss);
      if (onStep) onStep(k, result.loss);
    }
    if (shouldStop && (await shouldStop())) throw new Cancelled();
    // the open-set section was fitted on the meta-learned model: a random start has no score
    const section = init === "meta" ? this.openSet : null;
    let probabilities;
    let logits;
    let each = null; // the per-query batches (support rows, then the query)
    if (!transductive || section) each = await this.predictEach(state.params, images, batch, queries, labels, classes, section);
    if (transductive) {
      const all = new Float32Array(queries.length * 784);
      queries.forEach((q, i) => {
        all.set(q, i * 784);
      });
      const out = await this.predict(state.params, all, queries.length, classes);
      const row = (data, i) => Array.from(data.subarray(i * classes, (i + 1) * classes));
      probabilities = queries.map((_, i) => row(out.probabilities, i));
      logits = queries.map((_, i) => row(out.logits, i));
    } else {
      ({ probabilities, logits } = each);
    }
    // the score always reads the non-transductive batches: its thresholds were fitted on them
    const scores = section ? unknownScores(each.scoreInputs, section) : null;
    const limit = section ? threshold(section, taskSetting(labels, classes)) : null;
    const predictions = probabilities.map((p) => p.indexOf(Math.max(...p)));
    return { probabilities, logits, predictions, losses, elapsedMs: performance.now() - started,
      unknownScores: scores, unknown: scores ? scores.map((s) => s > limit) : null,
      settings: { steps, lr, optimizer, transductive, init } };
  }

  // Each query predicted in one batch with the support set (its row last) -> {probabilities, logits}
  // of the queries' rows, and with an open-set section each query's score inputs (open_set.js).
  async predictEach(params, images, batch, queries, labels, classes, section) {
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
        scoreInputs.push(queryScoreInputs(out.features, probabilities.at(-1), labels, classes,
          this.manifest.architecture.feature_blocks));
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
