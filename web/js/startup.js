// The page's configuration (#demo[data-config], rendered by the server or the static export) and the
// browser runtime's worker. index.html loads this module on its own, as an async script right after
// #demo, so that on a page that opens in browser mode the worker, the WebAssembly runtime and the
// model start loading while the rest of the page's modules still download (the slowest part of the
// first prediction: benchmarks/browser_cold_start.py); app.js imports the same instance.
import { BrowserAdapter } from "./adapters.js";

export const root = document.getElementById("demo");
export const config = JSON.parse(root.dataset.config);
// every URL absolute (the worker resolves relative URLs against its own script, not this page)
const absolute = (url) => (url ? new URL(url, location.href).href : url);
export const urls = Object.fromEntries(Object.entries(config.urls).map(([k, v]) => [k, k === "api" || typeof v !== "string"
  ? v : absolute(v)]));
urls.modelFiles = Object.fromEntries(Object.entries(config.urls.modelFiles || {}).map(([k, v]) => [k, absolute(v)]));

export const browser = new BrowserAdapter({
  worker: urls.worker, ort: urls.ort, ortWasm: urls.ortWasm, ortMjs: urls.ortMjs,
  modelBase: urls.modelBase, files: urls.modelFiles,
  // ?threads=N caps onnxruntime-web's threads (for measurements); it uses >1 only when cross-origin isolated
  threads: Number(new URLSearchParams(location.search).get("threads")) || null,
});

// An embedded demo loads nothing until it is scrolled into view; server mode never needs the runtime.
const startsInBrowser = !config.embed && (config.static || config.settings.mode === "browser");
if (startsInBrowser) browser.load().catch(() => {}); // app.js reports a failure when it adapts
