// The sine-wave toy's regression bundle in JavaScript (docs/bundle.md, "Regression bundles"): load and
// verify model.json, weights.safetensors and the two graphs, then adapt a start to a few points by plain
// SGD exactly as bundle/regression.py's RegressionBundle.adapt does, and give the gradient of the points'
// loss (the SGD graph with lr = 1: g = theta - updated). The onnxruntime namespace is passed in, so the
// same code runs on the page (onnxruntime-web) and under Node in the tests.
//
// It runs on the page's main thread, not in a Web Worker: the network is 1 -> 64 -> 64 -> 1, so each
// session run takes well under a millisecond, and the page yields between steps, so even the whole
// precomputation (3 starts x 32 steps, a prediction after each, ~0.1 s) makes no long task that would
// delay a click; a worker would only add its start-up and messages (docs/web.md, "/learn", measured).
import { BundleError, FORMAT, FORMAT_VERSION, parseSafetensors, sha256Hex } from "../engine.js";

export const REGRESSION = "regression";
const UPDATED = "updated.";
const SEPARATOR = "/"; // weight set / parameter (bundle/format.py WEIGHT_SET_SEPARATOR)
const GRAPHS = ["predict", "train_step_sgd"];

export class SineModel {
  // ort: the onnxruntime namespace; manifest: model.json; tensors: parsed safetensors;
  // sessions: {predict, train_step_sgd} InferenceSessions.
  constructor(ort, manifest, tensors, sessions) {
    this.ort = ort;
    this.manifest = manifest;
    this.tensors = tensors;
    this.sessions = sessions;
    this.paramNames = manifest.architecture.parameters.map((p) => p.name);
    this.paramShapes = Object.fromEntries(manifest.architecture.parameters.map((p) => [p.name, p.shape]));
    this.running = Promise.resolve(); // one session run at a time (onnxruntime-web does not allow two)
  }

  // base: the bundle folder's URL ending in "/"; files: {file name: URL} (e.g. with ?v= versions);
  // fetchBytes(url) -> Uint8Array. Every file's sha256 is checked against model.json before use.
  static async load(ort, base, { files = {}, fetchBytes = defaultFetchBytes, sessionOptions = {} } = {}) {
    const url = (name) => files[name] || new URL(name, base).href;
    const manifest = JSON.parse(new TextDecoder().decode(await fetchBytes(url("model.json"))));
    SineModel.checkManifest(manifest);
    const verified = async (name) => {
      const entry = manifest.files[name];
      if (!entry) throw new BundleError(`model.json has no sha256 for ${name}`);
      const bytes = await fetchBytes(url(name));
      const actual = await sha256Hex(bytes);
      if (actual !== entry.sha256) {
        throw new BundleError(`${name} does not match its sha256 in model.json (expected ${entry.sha256}, got ${actual}): ` +
          "a stale cache or a corrupted download; reload the page");
      }
      return bytes;
    };
    const options = { executionProviders: ["wasm"], graphOptimizationLevel: "disabled", ...sessionOptions };
    const runtime = await ort;
    const [tensors, ...sessions] = await Promise.all([
      verified(manifest.weights.file).then(parseSafetensors),
      ...GRAPHS.map((g) => verified(manifest.graphs[g].file).then((bytes) => runtime.InferenceSession.create(bytes, options))),
    ]);
    const model = new SineModel(runtime, manifest, tensors, Object.fromEntries(GRAPHS.map((g, i) => [g, sessions[i]])));
    model.checkWeights();
    return model;
  }

  static checkManifest(manifest) {
    if (!manifest || manifest.format !== FORMAT) throw new BundleError("model.json is not a reptile-bundle manifest");
    if (manifest.format_version !== FORMAT_VERSION) {
      throw new BundleError(`model.json has format version ${manifest.format_version}; this page understands ${FORMAT_VERSION}`);
    }
    if (manifest.task !== REGRESSION) throw new BundleError(`model.json is a ${manifest.task || "classification"} bundle, not a regression one`);
    for (const graph of GRAPHS) if (!manifest.graphs?.[graph]) throw new BundleError(`model.json declares no ${graph} graph`);
    if (!manifest.weights?.sets || !(manifest.weights.default_set in manifest.weights.sets)) {
      throw new BundleError("model.json weights need `sets` and a `default_set` among them");
    }
  }

  // Every weight set holds every parameter with the manifest's shape, all finite.
  checkWeights() {
    for (const set of this.weightSets) {
      for (const name of this.paramNames) {
        const key = set + SEPARATOR + name;
        const tensor = this.tensors[key];
        if (!tensor) throw new BundleError(`the weights lack ${key}`);
        if (tensor.shape.join(",") !== this.paramShapes[name].join(",")) {
          throw new BundleError(`${key} has shape [${tensor.shape}], expected [${this.paramShapes[name]}]`);
        }
        if (!tensor.data.every(Number.isFinite)) throw new BundleError(`${key} holds NaN or infinity`);
      }
    }
  }

  get weightSets() {
    return Object.keys(this.manifest.weights.sets);
  }

  get defaults() {
    return this.manifest.adaptation;
  }

  // One start's parameters, name -> Float32Array (shared with the model: never written to).
  params(weightSet) {
    if (!this.weightSets.includes(weightSet)) throw new RangeError(`weightSet: expected one of ${this.weightSets}, got ${weightSet}`);
    return Object.fromEntries(this.paramNames.map((n) => [n, this.tensors[weightSet + SEPARATOR + n].data]));
  }

  // fn() while no other session run is in progress.
  exclusive(fn) {
    const result = this.running.then(fn);
    this.running = result.catch(() => {});
    return result;
  }

  feeds(params) {
    return Object.fromEntries(this.paramNames.map((n) => [n, new this.ort.Tensor("float32", params[n], this.paramShapes[n])]));
  }

  points(values) {
    return new this.ort.Tensor("float32", Float32Array.from(values), [values.length, 1]);
  }

  // xs: numbers -> Float32Array of y.
  async predict(params, xs) {
    const out = await this.sessions.predict.run({ ...this.feeds(params), x: this.points(xs) });
    return out.y.data;
  }

  // One SGD step on the mean squared error of (xs, ys) -> {params, loss: the loss before the step}.
  async step(params, xs, ys, lr) {
    const feeds = { ...this.feeds(params), x: this.points(xs), y: this.points(ys),
      lr: new this.ort.Tensor("float32", new Float32Array([lr]), []) };
    const out = await this.sessions.train_step_sgd.run(feeds);
    return { params: Object.fromEntries(this.paramNames.map((n) => [n, out[UPDATED + n].data])), loss: out.loss.data[0] };
  }

  // `steps` full-batch SGD steps on the points (xs, ys) from one start, as RegressionBundle.adapt ->
  // {losses: the points' mean squared error after 0..steps steps, predictions: for each of those states
  // a Float32Array of the fit at queryX}. shouldStop() is awaited between steps; true ends the run with
  // null (a newer request replaced it).
  async adapt({ xs, ys, weightSet, steps, lr, queryX = [], shouldStop = null }) {
    steps = steps ?? this.defaults.steps;
    lr = lr ?? this.defaults.lr;
    let params = this.params(weightSet);
    const at = [...queryX, ...xs]; // one prediction gives the fit and the points' loss
    const losses = [];
    const predictions = [];
    const record = (y) => {
      predictions.push(y.slice(0, queryX.length));
      losses.push(meanSquaredError(y.subarray(queryX.length), ys));
    };
    record(await this.exclusive(() => this.predict(params, at)));
    for (let k = 0; k < steps && xs.length > 0; k++) {
      if (shouldStop && (await shouldStop())) return null;
      params = (await this.exclusive(() => this.step(params, xs, ys, lr))).params;
      record(await this.exclusive(() => this.predict(params, at)));
    }
    return { losses, predictions, params };
  }

  // The gradient of the points' mean squared error at `params`, flattened in the graphs' parameter
  // order (float64 differences of the float32 tensors).
  async gradient(params, xs, ys) {
    const updated = (await this.exclusive(() => this.step(params, xs, ys, 1))).params;
    const size = this.paramNames.reduce((total, n) => total + params[n].length, 0);
    const g = new Float64Array(size);
    let offset = 0;
    for (const n of this.paramNames) {
      for (let i = 0; i < params[n].length; i++) g[offset + i] = params[n][i] - updated[n][i];
      offset += params[n].length;
    }
    return g;
  }
}

// The mean squared error of predictions against targets (float64); NaN for no points.
export function meanSquaredError(predicted, targets) {
  let total = 0;
  for (let i = 0; i < targets.length; i++) total += (predicted[i] - targets[i]) ** 2;
  return total / targets.length;
}

async function defaultFetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new BundleError(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}
