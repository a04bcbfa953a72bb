// The Taylor analysis in one picture, on /learn: for a few waves, the gradients of two separate
// mini-batches of the same wave at each start of the sine model, and their inner product, averaged
// over the waves and shown as bars. Nichol et al. (2018, section 4) show that Reptile's update, to
// leading order, makes exactly this inner product larger; the bars measure it live.
import { formatNumber } from "./plot.js";
import { seededRandom, uniform } from "./random.js";
import { STARTS } from "./sine.js";

export const WAVES = 20;
export const BATCH = 10; // points per mini-batch, as in the sine model's training

const dot = (u, v) => {
  let total = 0;
  for (let i = 0; i < u.length; i++) total += u[i] * v[i];
  return total;
};

// mean and standard error of the mean
function meanAndError(values) {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / Math.max(1, values.length - 1);
  return { mean, se: Math.sqrt(variance / values.length) };
}

// For `waves` waves of the bundle's family (seeded), two disjoint mini-batches of `batch` points ->
// {weight set: {inner: {mean, se} of g1 . g2, cosine: {mean, se}}}.
export async function measureAlignment(model, seed, { waves = WAVES, batch = BATCH, shouldStop = null } = {}) {
  const random = seededRandom(seed);
  const { amplitude, phase, x } = model.manifest.tasks;
  const samples = Object.fromEntries(STARTS.map(({ set }) => [set, { inner: [], cosine: [] }]));
  for (let w = 0; w < waves; w++) {
    const a = uniform(random, ...amplitude);
    const p = uniform(random, ...phase);
    const batches = [0, 1].map(() => {
      const xs = Array.from({ length: batch }, () => uniform(random, ...x));
      return { xs, ys: xs.map((v) => a * Math.sin(v + p)) };
    });
    for (const { set } of STARTS) {
      if (shouldStop && (await shouldStop())) return null;
      const params = model.params(set);
      const [g1, g2] = [await model.gradient(params, batches[0].xs, batches[0].ys),
        await model.gradient(params, batches[1].xs, batches[1].ys)];
      const inner = dot(g1, g2);
      samples[set].inner.push(inner);
      samples[set].cosine.push(inner / Math.sqrt(dot(g1, g1) * dot(g2, g2)));
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([set, s]) => [set, { inner: meanAndError(s.inner), cosine: meanAndError(s.cosine) }]));
}

export class TaylorPart {
  // section: the part's <section>; state.wavesSeed (changed here); model: a Promise of the SineModel;
  // onChange(): the state changed; announce(text): the live region.
  constructor(section, { state, model, onChange, announce }) {
    Object.assign(this, { section, state, model, onChange, announce });
    const $ = (id) => section.querySelector(`#${id}`);
    this.status = $("taylor-status");
    this.rows = Object.fromEntries(STARTS.map((s) => [s.set, {
      bar: $(`taylor-bar-${s.key}`), inner: $(`taylor-inner-${s.key}`), cosine: $(`taylor-cosine-${s.key}`) }]));
    this.measurements = 0;
    $("taylor-resample").addEventListener("click", () => {
      state.wavesSeed += 1;
      onChange();
      this.measure(true);
    });
    this.measure(false);
  }

  async measure(announce) {
    this.generation = (this.generation || 0) + 1;
    const generation = this.generation;
    this.section.dataset.busy = "true";
    this.status.textContent = "Measuring…";
    let results;
    try {
      const model = await this.model;
      const started = performance.now();
      results = await measureAlignment(model, this.state.wavesSeed, { shouldStop: async () => generation !== this.generation });
      if (!results) return;
      this.elapsedMs = performance.now() - started;
    } catch (error) {
      this.status.textContent = `The sine model did not load: ${error.message}`;
      this.section.dataset.busy = "false";
      return;
    }
    this.results = results;
    const top = Math.max(...Object.values(results).map((r) => r.inner.mean), 1e-12);
    for (const { set } of STARTS) {
      const { inner, cosine } = results[set];
      const row = this.rows[set];
      row.bar.style.width = `${(100 * Math.max(0, inner.mean / top)).toFixed(1)}%`; // CSSOM, allowed by the CSP
      row.inner.textContent = `${formatNumber(inner.mean)} \u00b1 ${formatNumber(inner.se, 2)}`;
      row.cosine.textContent = formatNumber(cosine.mean, 2);
    }
    this.measurements += 1;
    this.section.dataset.measurements = String(this.measurements);
    this.section.dataset.busy = "false";
    this.status.textContent = `Measured on ${WAVES} waves (seed ${this.state.wavesSeed}), two batches of ${BATCH} points each, ` +
      `in your browser: ${Math.round(this.elapsedMs)} ms.`;
    if (announce) {
      this.announce(`Gradient agreement: ${STARTS.map((s) => `${s.name} ${formatNumber(results[s.set].inner.mean)}`).join(", ")}`);
    }
  }
}
