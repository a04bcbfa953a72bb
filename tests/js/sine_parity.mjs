// web/js/learn/sine_engine.js under Node with onnxruntime-web's wasm build: adapt the cases written by
// tests/test_learn_math.py and print the losses and fits as JSON (the Python side compares them with
// bundle/regression.py). Usage: node tests/js/sine_parity.mjs CASE.json
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

import * as ort from "../../web/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";
import { SineModel } from "../../web/js/learn/sine_engine.js";

ort.env.wasm.numThreads = 1;
const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
// spec.bundle: the bundle folder; spec.cases: [{x, y, weightSet, steps, lr, queryX}]; spec.gradient: {x, y}
const base = pathToFileURL(spec.bundle.endsWith("/") ? spec.bundle : `${spec.bundle}/`).href;
const fetchBytes = async (url) => new Uint8Array(readFileSync(new URL(url)));
const model = await SineModel.load(ort, base, { fetchBytes });
const out = { weightSets: model.weightSets, cases: [], gradients: {} };
for (const c of spec.cases) {
  const fit = await model.adapt({ xs: c.x, ys: c.y, weightSet: c.weightSet, steps: c.steps, lr: c.lr, queryX: c.queryX });
  out.cases.push({ losses: fit.losses, predictions: fit.predictions.map((p) => Array.from(p)) });
}
for (const set of model.weightSets) {
  out.gradients[set] = Array.from(await model.gradient(model.params(set), spec.gradient.x, spec.gradient.y));
}
// exit once written (onnxruntime-web keeps the event loop alive; an early exit would cut a piped output)
process.stdout.write(JSON.stringify(out), () => process.exit(0));
