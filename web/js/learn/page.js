// The /learn page ("Why it works") and its embeds (/embed?view=sine|landscape|taylor): reads the
// configuration (#learn[data-config], rendered by the server) and the state in the URL, loads
// onnxruntime-web and the sine bundle when a part needs them, and wires the parts that the page holds.
import { LandscapePart } from "./landscape.js";
import { SineModel } from "./sine_engine.js";
import { SinePart } from "./sine.js";
import { TaylorPart } from "./taylor.js";
import { readState, urlWriter } from "./url_state.js";
import { postHeightChanges, setupProjector, startOffline } from "./shell.js";

const root = document.getElementById("learn");
const config = JSON.parse(root.dataset.config);
const absolute = (url) => new URL(url, location.href).href;
const state = readState(location.search);
const writeUrl = urlWriter();
const onChange = () => writeUrl(state);
const live = document.getElementById("learn-announce");
const announce = (text) => {
  live.textContent = text;
};

// onnxruntime-web's wasm build on this thread (sine_engine.js says why not in a worker): one thread,
// its files from this origin only.
async function loadModel() {
  const { urls } = config;
  const ort = await import(absolute(urls.ort));
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = { wasm: absolute(urls.ortWasm), mjs: absolute(urls.ortMjs) };
  ort.env.logLevel = "error";
  const files = Object.fromEntries(Object.entries(urls.sineFiles).map(([name, url]) => [name, absolute(url)]));
  return SineModel.load(ort, absolute(urls.sineBase), { files });
}

const section = (id) => document.getElementById(id);
const needsModel = section("sine") || section("taylor");
const model = needsModel ? loadModel() : null;
model?.catch((error) => console.warn("the sine model did not load:", error.message));
const parts = {};
if (section("sine")) parts.sine = new SinePart(section("sine"), { state, model, onChange, announce });
if (section("landscape")) parts.landscape = new LandscapePart(section("landscape"), { state, onChange, announce });
if (section("taylor")) parts.taylor = new TaylorPart(section("taylor"), { state, model, onChange, announce });

setupProjector(document.getElementById("projector"), state.projector, (on) => {
  state.projector = on;
  onChange();
});
const copyLink = document.getElementById("copy-link");
copyLink?.addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(location.href);
    announce("Link copied: it opens this view with these settings");
  } catch {
    announce(`Copy this link: ${location.href}`);
  }
});
postHeightChanges();
Promise.resolve(model).catch(() => {}).finally(() => startOffline(config.urls.sw));

// For tests and the curious: read-only views of the parts.
window.reptileLearn = {
  get state() { return structuredClone(state); },
  get sine() {
    const p = parts.sine;
    return p && { adaptations: p.adaptations, losses: p.fits && p.lossesAt(state.steps), elapsedMs: p.elapsedMs,
      fitAt: (set, step) => p.fitAt(set, step) };
  },
  get landscape() {
    const p = parts.landscape;
    return p && { phi: state.phi, closest: p.closest, distance: p.distance, iterations: p.iterations };
  },
  get taylor() {
    const p = parts.taylor;
    return p && { results: p.results, measurements: p.measurements, elapsedMs: p.elapsedMs };
  },
  model,
};
