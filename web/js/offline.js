// Offline use on the demo's page: when to register the service worker (service_worker.js) and what
// to hand it, including the adaptation worker's loads.
import { cacheLoaded, registerServiceWorker } from "./service_worker.js";
import { browser, urls } from "./startup.js";

let registrationStarted = false;
let serviceWorker = null; // the active service worker, once registered
let runtimeCached = false;

// Not at page load: installing the service worker and caching what the page loaded would compete
// with the first adaptation for the CPU. The page calls it after its first prediction (or 10 s).
export function startServiceWorker() {
  if (registrationStarted) return;
  registrationStarted = true;
  registerServiceWorker(urls.sw).then((worker) => {
    serviceWorker = worker;
    cacheForOffline();
  });
}

function cacheForOffline() {
  cacheLoaded(serviceWorker, browser.info?.resources || []);
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
