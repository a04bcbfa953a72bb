// The open-set score ("none of these") in the browser: the same arithmetic as bundle/open_set.py,
// which is its definition (docs/bundle.md, "open_set"). Each query is predicted in one batch with the
// support set (its row last); from that batch's `features` and the query's probabilities the score
// takes 1 + 2L inputs (L conv blocks): 1 - the largest probability, then per block 1 - the largest
// cosine between the query's block output and a class mean of the support rows, then the same on each
// block's channel means. Standardised, weighted, logistic -> unknown score in (0, 1); unknown when it
// is above the threshold of the task's setting "<classes>x<shots>". Plain JS numbers: float64, as
// the Python (tests/test_web_engine_js.py checks the two agree within 1e-9).

export const SECTION = "open_set"; // model.json's key
export const FEATURES_OUTPUT = "features"; // the predict graph's output it reads

// The score's inputs, in order, for a network of `layers` conv blocks.
export function inputNames(layers) {
  const blocks = Array.from({ length: layers }, (_, b) => b + 1);
  return ["msp", ...blocks.map((b) => `block${b}_cosine`), ...blocks.map((b) => `block${b}_pooled_cosine`)];
}

// The thresholds' key of a task with `classes` classes whose smallest class has `shots` examples.
export function settingKey(classes, shots) {
  return `${classes}x${shots}`;
}

// The setting of a support set's labels: its classes and the fewest examples of any class.
export function taskSetting(labels, classes) {
  const counts = new Array(classes).fill(0);
  for (const label of labels) counts[label]++;
  return settingKey(classes, Math.min(...counts));
}

// 1 - the largest cosine similarity between `query` and a class mean of `support` (rows by label).
// support: arrays of one length d, query: an array of length d.
function nearestCosine(support, query, labels, classes) {
  const d = query.length;
  const means = Array.from({ length: classes }, () => new Float64Array(d));
  const counts = new Array(classes).fill(0);
  for (const label of labels) counts[label]++;
  support.forEach((row, s) => {
    const mean = means[labels[s]];
    const weight = 1 / counts[labels[s]];
    for (let i = 0; i < d; i++) mean[i] += weight * row[i];
  });
  let queryNorm = 0;
  for (let i = 0; i < d; i++) queryNorm += query[i] * query[i];
  queryNorm = Math.sqrt(queryNorm);
  let best = Number.NEGATIVE_INFINITY;
  for (const mean of means) {
    let dot = 0;
    let norm = 0;
    for (let i = 0; i < d; i++) {
      dot += mean[i] * query[i];
      norm += mean[i] * mean[i];
    }
    best = Math.max(best, dot / Math.max(Math.sqrt(norm) * queryNorm, 1e-12));
  }
  return 1 - best;
}

// A row's per-channel means of a [channels, height * width] block.
function channelMeans(block, channels, area) {
  const means = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    for (let i = c * area; i < (c + 1) * area; i++) sum += block[i];
    means[c] = sum / area;
  }
  return means;
}

// One query's score inputs (an array of 1 + 2L numbers). features: its predict batch's `features`,
// [S + 1, D] flat (the S support rows, then the query); probabilities: the query's (C numbers) from
// that batch; labels: the S support labels; blocks: [channels, height, width] of each block, in the
// order of `features`.
export function queryScoreInputs(features, probabilities, labels, classes, blocks) {
  const rows = labels.length + 1;
  const perImage = features.length / rows;
  const total = blocks.reduce((sum, [c, h, w]) => sum + c * h * w, 0);
  if (total !== perImage) throw new RangeError(`features: ${perImage} values per image, the blocks account for ${total}`);
  const flat = [];
  const pooled = [];
  let start = 0;
  for (const [channels, height, width] of blocks) {
    const size = channels * height * width;
    const part = (r) => features.subarray(r * perImage + start, r * perImage + start + size);
    const support = Array.from(labels, (_, s) => part(s));
    const query = part(rows - 1);
    flat.push(nearestCosine(support, query, labels, classes));
    const area = height * width;
    pooled.push(nearestCosine(support.map((s) => channelMeans(s, channels, area)), channelMeans(query, channels, area),
      labels, classes));
    start += size;
  }
  return [1 - Math.max(...probabilities), ...flat, ...pooled];
}

// q queries at once: features and probabilities are arrays of q (each as queryScoreInputs takes).
export function scoreInputs(features, probabilities, labels, classes, blocks) {
  return features.map((f, j) => queryScoreInputs(f, probabilities[j], labels, classes, blocks));
}

// The section's logistic combination of score inputs (arrays of 1 + 2L) -> one score per query.
export function unknownScores(inputs, section) {
  return inputs.map((row) => {
    let logit = section.bias;
    row.forEach((x, i) => {
      logit += ((x - section.mean[i]) / section.scale[i]) * section.weights[i];
    });
    return 1 / (1 + Math.exp(-logit));
  });
}

// The score above which a query of a task in `setting` is unknown.
export function threshold(section, setting) {
  return section.thresholds[setting];
}

const finite = (value) => typeof value === "number" && Number.isFinite(value);

// null when `section` is a usable open-set section for this architecture and these settings, else why.
export function checkSection(section, layers, [minClasses, maxClasses], [minShots, maxShots]) {
  if (section === null || typeof section !== "object" || Array.isArray(section)) return `${SECTION} is not an object`;
  const names = inputNames(layers);
  if (JSON.stringify(section.inputs) !== JSON.stringify(names)) {
    return `${SECTION}.inputs is ${JSON.stringify(section.inputs)}, this page computes ${JSON.stringify(names)}`;
  }
  for (const key of ["mean", "scale", "weights"]) {
    const values = section[key];
    if (!Array.isArray(values) || values.length !== names.length || !values.every(finite)) {
      return `${SECTION}.${key} must be ${names.length} finite numbers`;
    }
  }
  if (!section.scale.every((v) => v > 0)) return `${SECTION}.scale must be positive`;
  if (!finite(section.bias)) return `${SECTION}.bias must be a finite number`;
  const thresholds = section.thresholds;
  if (thresholds === null || typeof thresholds !== "object" || Array.isArray(thresholds)) {
    return `${SECTION}.thresholds is not an object`;
  }
  for (let classes = minClasses; classes <= maxClasses; classes++) {
    for (let shots = minShots; shots <= maxShots; shots++) {
      const value = thresholds[settingKey(classes, shots)];
      if (!finite(value) || value < 0 || value > 1) {
        return `${SECTION}.thresholds["${settingKey(classes, shots)}"] must be a number in [0, 1]`;
      }
    }
  }
  return null;
}

// null when the manifest has no open-set section or a usable one (and the features it reads), else why.
export function manifestProblem(manifest, where) {
  const section = manifest[SECTION];
  if (section === undefined || section === null) return null;
  const blocks = manifest.architecture?.feature_blocks;
  const outputs = manifest.graphs?.predict?.outputs;
  const ranges = ["classes", "shots"].map((k) => [manifest[k]?.min, manifest[k]?.max]);
  if (!Array.isArray(blocks) || !Array.isArray(outputs) || !ranges.flat().every(Number.isInteger)) {
    return `${where}: ${SECTION} needs architecture.feature_blocks, classes, shots and the predict outputs`;
  }
  if (!outputs.some((o) => o?.name === FEATURES_OUTPUT)) {
    return `${where}: ${SECTION} needs the predict graph's "${FEATURES_OUTPUT}" output`;
  }
  const problem = checkSection(section, blocks.length, ...ranges);
  return problem ? `${where}: ${problem}` : null;
}
