// web/js/open_set.js on cases written by tests/test_web_engine_js.py: the score's inputs, scores and
// thresholds of fixed random features, probabilities and labels, with a bank's features where a case
// has one (the Python side compares them with bundle/open_set.py), and Model.checkManifest's answer
// to manifests whose open-set section is malformed. Usage: node tests/js/open_set_parity.mjs CASES.json
import { readFileSync } from "node:fs";

import { Model } from "../../web/js/engine.js";
import {
  checkSection, referenceImages, referenceStatistics, scoreInputs, taskSetting, threshold, unknownScores,
} from "../../web/js/open_set.js";

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
// every byte value of a bank as the model input the page feeds (float32, printed exactly)
const out = { cases: [], manifests: [], referenceImages: Array.from(referenceImages(Uint8Array.from({ length: 256 }, (_, v) => v))) };
for (const c of spec.cases) {
  const features = c.features.map((f) => Float64Array.from(f));
  const reference = c.bank
    ? referenceStatistics(Float64Array.from(c.bank), c.labels, c.classes, c.blocks, c.references) : null;
  const inputs = scoreInputs(features, c.probabilities, c.labels, c.classes, c.blocks, reference);
  const setting = taskSetting(c.labels, c.classes);
  out.cases.push({ inputs, scores: unknownScores(inputs, c.section), setting, threshold: threshold(c.section, setting),
    problem: checkSection(c.section, c.blocks.length, [2, 10], [1, 5]) });
}
for (const manifest of spec.manifests) {
  try {
    Model.checkManifest(manifest);
    out.manifests.push(null);
  } catch (error) {
    out.manifests.push({ name: error.name, message: error.message });
  }
}
process.stdout.write(JSON.stringify(out));
process.exit(0); // engine.js's MessageChannel keeps the event loop alive
