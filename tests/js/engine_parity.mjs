// web/js/engine.js under Node with onnxruntime-web's wasm build: adapt a case written by
// tests/test_web_engine_js.py and print the result as JSON (the Python side compares it with
// bundle.Bundle.adapt). Usage: node tests/js/engine_parity.mjs CASE.json
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

import * as ort from "../../web/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";
import { Model, buildHead, parseSafetensors } from "../../web/js/engine.js";

ort.env.wasm.numThreads = 1;
const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
// spec.bundle: a bundle folder; spec.cases: the adaptations (Model.adapt's arguments)
const base = pathToFileURL(spec.bundle.endsWith("/") ? spec.bundle : `${spec.bundle}/`).href;
const fetchBytes = async (url) => new Uint8Array(readFileSync(new URL(url)));
let model;
try {
  model = await Model.load(ort, base, { fetchBytes });
} catch (error) { // a bundle Model.load refuses: its error is the output
  process.stdout.write(JSON.stringify({ loadError: `${error.name}: ${error.message}` }));
  process.exit(0);
}
const out = { cases: [] };
// c.start: another bundle folder, adapted as a comparison start (its weights on this model's graphs);
// its refusal is reported as {error}. c.trace: also Model.trace's probabilities after each step.
for (const c of spec.cases) {
  let start = model;
  if (c.start) {
    const folder = pathToFileURL(`${c.start}/`).href;
    try {
      start = await model.loadStart({ manifest: new URL("model.json", folder).href,
        weights: new URL("weights.safetensors", folder).href }, { fetchBytes });
    } catch (error) {
      out.cases.push({ error: `${error.name}: ${error.message}` });
      continue;
    }
  }
  const settings = { support: c.support.map((a) => Float32Array.from(a)), labels: c.labels,
    queries: c.queries.map((a) => Float32Array.from(a)), steps: c.steps, lr: c.lr, optimizer: c.optimizer,
    transductive: c.transductive };
  const result = await start.adapt(settings);
  out.cases.push({ probabilities: result.probabilities, losses: result.losses, predictions: result.predictions,
    unknownScores: result.unknownScores, unknown: result.unknown, trace: c.trace ? await start.trace(settings) : null });
}
// the head rule for a class count other than the trained one, on the raw weights
const tensors = parseSafetensors(readFileSync(new URL("weights.safetensors", base)));
const [weight, bias] = buildHead(tensors["fc.weight"].data, tensors["fc.bias"].data, 3, model.trainedWays);
out.head3 = { weight: Array.from(weight.subarray(0, 8)), bias: Array.from(bias) };
process.stdout.write(JSON.stringify(out));
process.exit(0); // onnxruntime-web keeps the event loop alive
