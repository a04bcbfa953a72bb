// The service worker (web/sw.js) for offline use, shared by the demo and /learn: registration, and
// the URLs a page loaded before the worker controlled it, which the worker caches since it did not
// see their requests. Never the adaptation API.

// Registers `swUrl` -> the active worker, or null where offline use is not available.
export function registerServiceWorker(swUrl) {
  if (!swUrl || !("serviceWorker" in navigator) || !window.isSecureContext) return Promise.resolve(null);
  return navigator.serviceWorker.register(swUrl).then(() => navigator.serviceWorker.ready)
    .then((registration) => registration.active)
    .catch((error) => {
      console.warn("offline use is not available:", error.message);
      return null;
    });
}

// Hands `worker` this page's loaded same-origin URLs (and `extra` ones, e.g. a Web Worker's) to cache.
export function cacheLoaded(worker, extra = []) {
  if (!worker) return;
  const loaded = [location.href.split("#")[0], ...performance.getEntriesByType("resource").map((e) => e.name), ...extra];
  worker.postMessage({ type: "cache", urls: loaded.filter((u) => u.startsWith(location.origin) && !u.includes("/api/")) });
}
