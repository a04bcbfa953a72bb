// The open-set score ("none of these") in the browser: the same arithmetic as bundle/open_set.py,
// which is its definition (docs/bundle.md, "open_set"). Each query is predicted in one batch with the
// support set (its row last); from that batch's `features` and the query's probabilities the score
// takes 1 + 2L inputs (L conv blocks; 2L "views": each block's output, then its channel means):
// 1 - the largest probability, then per view 1 - the largest cosine between the query and a class
// mean of the support rows. A section with `references` (a bank of drawings shipped in the bundle,
// predicted once in one batch with the support set) adds per view minus the query's largest z-score
// of its cosine against the class's mean and spread over the bank. Standardised, weighted, logistic
// -> unknown score in (0, 1); unknown when it is above the threshold of the task's setting
// "<classes>x<shots>". Plain JS numbers: float64, as the Python (tests/test_web_engine_js.py checks
// the two agree within 1e-9).

export const SECTION = "open_set"; // model.json's key
export const FEATURES_OUTPUT = "features"; // the predict graph's output it reads
export const SPREAD_FLOOR = 1e-6; // added to each class's spread of reference cosines

// The score's inputs, in order, for a network of `layers` conv blocks (with the bank's z-scores).
export function inputNames(layers, references = false) {
  const blocks = Array.from({ length: layers }, (_, b) => b + 1);
  const views = [...blocks.map((b) => `block${b}_cosine`), ...blocks.map((b) => `block${b}_pooled_cosine`)];
  return ["msp", ...views, ...(references ? views.map((name) => `${name}_z`) : [])];
}

// The bank as model inputs: Float32Array of value / 255 (the same float32 as the Python's).
export function referenceImages(bytes) {
  return Float32Array.from(bytes, (v) => v / 255);
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

// Each class's mean of the support rows (arrays of one length d, by label) -> C Float64Arrays.
function classMeans(support, labels, classes) {
  const d = support[0].length;
  const means = Array.from({ length: classes }, () => new Float64Array(d));
  const counts = new Array(classes).fill(0);
  for (const label of labels) counts[label]++;
  support.forEach((row, s) => {
    const mean = means[labels[s]];
    const weight = 1 / counts[labels[s]];
    for (let i = 0; i < d; i++) mean[i] += weight * row[i];
  });
  return means;
}

// A row's cosine similarity with each class mean -> C numbers.
function cosines(means, row) {
  let rowNorm = 0;
  for (let i = 0; i < row.length; i++) rowNorm += row[i] * row[i];
  rowNorm = Math.sqrt(rowNorm);
  return means.map((mean) => {
    let dot = 0;
    let norm = 0;
    for (let i = 0; i < row.length; i++) {
      dot += mean[i] * row[i];
      norm += mean[i] * mean[i];
    }
    return dot / Math.max(Math.sqrt(norm) * rowNorm, 1e-12);
  });
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

// features: `rows` images' outputs, flat [rows * D] -> the 2L views, each an array of `rows` rows:
// every block's output (flat), then every block's channel means.
function views(features, rows, blocks) {
  const perImage = features.length / rows;
  const total = blocks.reduce((sum, [c, h, w]) => sum + c * h * w, 0);
  if (total !== perImage) throw new RangeError(`features: ${perImage} values per image, the blocks account for ${total}`);
  const flat = [];
  const pooled = [];
  let start = 0;
  for (const [channels, height, width] of blocks) {
    const size = channels * height * width;
    const part = Array.from({ length: rows }, (_, r) => features.subarray(r * perImage + start, r * perImage + start + size));
    flat.push(part);
    pooled.push(part.map((row) => channelMeans(row, channels, height * width)));
    start += size;
  }
  return [...flat, ...pooled];
}

// The bank's per-class statistics from ONE predict batch of the support set then the R references
// (features [(S + R) * D] flat) -> {mean, spread}: per view, per class, the mean and the standard
// deviation (+ SPREAD_FLOOR) over the references of their cosine with the class mean.
export function referenceStatistics(features, labels, classes, blocks, references) {
  const s = labels.length;
  const mean = [];
  const spread = [];
  for (const view of views(features, s + references, blocks)) {
    const means = classMeans(view.slice(0, s), labels, classes);
    const all = view.slice(s).map((row) => cosines(means, row)); // [R][C]
    const m = Array.from({ length: classes }, (_, c) => all.reduce((sum, row) => sum + row[c], 0) / references);
    mean.push(m);
    spread.push(m.map((mc, c) => Math.sqrt(all.reduce((sum, row) => sum + (row[c] - mc) ** 2, 0) / references) + SPREAD_FLOOR));
  }
  return { mean, spread };
}

// One query's score inputs (an array of 1 + 2L numbers, 1 + 4L with `reference`). features: its
// predict batch's `features`, [S + 1, D] flat (the S support rows, then the query); probabilities:
// the query's (C numbers) from that batch; labels: the S support labels; blocks: [channels, height,
// width] of each block, in the order of `features`; reference: referenceStatistics of the bank.
export function queryScoreInputs(features, probabilities, labels, classes, blocks, reference = null) {
  const s = labels.length;
  const similarities = views(features, s + 1, blocks).map((view) => cosines(classMeans(view.slice(0, s), labels, classes), view[s]));
  const inputs = [1 - Math.max(...probabilities), ...similarities.map((c) => 1 - Math.max(...c))];
  if (reference) {
    similarities.forEach((c, v) => {
      inputs.push(-Math.max(...c.map((x, k) => (x - reference.mean[v][k]) / reference.spread[v][k])));
    });
  }
  return inputs;
}

// q queries at once: features and probabilities are arrays of q (each as queryScoreInputs takes).
export function scoreInputs(features, probabilities, labels, classes, blocks, reference = null) {
  return features.map((f, j) => queryScoreInputs(f, probabilities[j], labels, classes, blocks, reference));
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
  if ("references" in section && !referenceShape(section.references)) {
    return `${SECTION}.references must be {file: a file name, shape: [count >= 2, channels, height, width]}`;
  }
  const names = inputNames(layers, "references" in section);
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
  let problem = checkSection(section, blocks.length, ...ranges);
  const references = section.references;
  if (!problem && references) {
    if (!Object.hasOwn(manifest.files ?? {}, references.file)) {
      problem = `${SECTION}.references.file "${references.file}" has no sha256 in files`;
    } else if (JSON.stringify(references.shape.slice(1)) !== JSON.stringify(manifest.input?.shape?.slice(1))) {
      problem = `${SECTION}.references.shape [${references.shape}] is not [count, *the input's image shape]`;
    }
  }
  return problem ? `${where}: ${problem}` : null;
}

// references is {file: a name (manifestProblem checks it is one of the bundle's files), shape: [count >= 2,
// channels, height, width] of positive integers}.
function referenceShape(references) {
  if (references === null || typeof references !== "object" || typeof references.file !== "string") return false;
  const shape = references.shape;
  return Array.isArray(shape) && shape.length === 4 && shape.every((v) => Number.isInteger(v) && v >= 1) && shape[0] >= 2;
}
