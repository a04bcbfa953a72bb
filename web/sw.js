// Offline use after the first visit: the page, its scripts and styles, the example drawings, the
// WebAssembly runtime and the model are kept in a cache.
// - URLs with ?v=<content hash> never change: cache first.
// - everything else (the page, unversioned modules): network first, the cache when offline.
// - the adaptation API and other non-GET requests are never cached.
// The page posts {type: "cache", urls} with what it loaded before this worker controlled it.
const CACHE = "reptile-demo-v1";
const NEVER = ["/api/", "/docs", "/openapi.json", "/healthz", "/readyz", "/oembed"];

self.addEventListener("install", () => self.skipWaiting());

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

function cacheable(url) {
  return url.origin === self.location.origin && !NEVER.some((p) => url.pathname.includes(p));
}

async function store(request, response) {
  if (response?.ok && response.type === "basic") {
    const cache = await caches.open(CACHE);
    await cache.put(request, response);
  }
}

self.addEventListener("message", (event) => {
  if (event.data?.type !== "cache" || !Array.isArray(event.data.urls)) return;
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    for (const href of event.data.urls) {
      const url = new URL(href, self.location.href);
      if (!cacheable(url) || (await cache.match(url.href, { ignoreVary: true }))) continue;
      try {
        await store(url.href, await fetch(url.href, { credentials: "same-origin" }));
      } catch {
        // offline or gone: it will be cached when next fetched
      }
    }
  })());
});

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (!cacheable(url)) return;
  if (url.searchParams.has("v") && request.mode !== "navigate") {
    event.respondWith((async () => {
      const hit = await caches.match(request, { ignoreVary: true });
      if (hit) return hit;
      const response = await fetch(request);
      event.waitUntil(store(request, response.clone()));
      return response;
    })());
    return;
  }
  event.respondWith((async () => {
    try {
      const response = await fetch(request);
      event.waitUntil(store(request, response.clone()));
      return response;
    } catch (error) {
      const hit = (await caches.match(request, { ignoreVary: true }))
        || (request.mode === "navigate" && (await caches.match(request, { ignoreVary: true, ignoreSearch: true })));
      if (hit) return hit;
      throw error;
    }
  })());
});
