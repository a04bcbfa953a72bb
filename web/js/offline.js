// Offline use: registers the service worker (web/sw.js) and hands it what was loaded before it.
// It caches those URLs (the page's and the adaptation worker's) too, since it did not see their requests.
import { browser, urls } from "./startup.js";

let registrationStarted = false;
let serviceWorker = null; // the active service worker, once registered
let runtimeCached = false;

// Not at page load: installing the service worker and caching what the page loaded would compete
// with the first adaptation for the CPU. The page calls it after its first prediction (or 10 s).
export function startServiceWorker() {
  if (registrationStarted || !("serviceWorker" in navigator) || !urls.sw || !window.isSecureContext) return;
  registrationStarted = true;
  navigator.serviceWorker.register(urls.sw).then(() => navigator.serviceWorker.ready)
    .then((registration) => {
      serviceWorker = registration.active;
      cacheForOffline();
    })
    .catch((error) => console.warn("offline use is not available:", error.message));
}

// The service worker caches what it does not have yet; never the adaptation API.
function cacheForOffline() {
  if (!serviceWorker) return;
  const loaded = [location.href.split("#")[0], ...performance.getEntriesByType("resource").map((e) => e.name),
    ...(browser.info?.resources || [])];
  serviceWorker.postMessage({ type: "cache", urls: loaded.filter((u) => u.startsWith(location.origin) && !u.includes("/api/")) });
}

// After each prediction: the first one made in the browser means the runtime and the model are
// loaded, worth caching; and the service worker starts once the page is idle.
export function afterPrediction(inBrowser) {
  if (inBrowser && !runtimeCached) {
    runtimeCached = true;
    cacheForOffline();
  }
  if (!registrationStarted) (window.requestIdleCallback || setTimeout)(startServiceWorker);
}
