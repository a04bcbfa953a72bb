// What the /learn page shares with the demo's page around its parts: projector mode (the class
// "projector" on <html>, styled by demo.css), the embed's height messages to the parent page, and
// offline use through the demo's service worker (/sw.js). The demo's own app.js and offline.js read
// the demo's configuration from #demo, so the projector and offline lines follow them here; the height
// messages are frame_height.js's, shared with the demo's embed.js.
import { postFrameHeight } from "../frame_height.js";

// Projector mode: the button (absent in an embed) toggles it; `on` is its state from the URL.
export function setupProjector(button, on, onChange) {
  const apply = (value) => {
    document.documentElement.classList.toggle("projector", value);
    button?.setAttribute("aria-pressed", String(value));
  };
  apply(on);
  button?.addEventListener("click", () => {
    const value = !document.documentElement.classList.contains("projector");
    apply(value);
    onChange(value);
  });
}

// The height messages (frame_height.js, as the demo's embed sends them) when the page is framed.
export function postHeightChanges() {
  if (window.parent !== window) postFrameHeight();
}

// Registers the service worker once the page is idle and hands it the URLs the page loaded (the page,
// its modules and styles, onnxruntime-web and the sine bundle), which it cached before it controlled
// the page. The worker caches what it lacks (web/sw.js).
export function startOffline(swUrl) {
  if (!swUrl || !("serviceWorker" in navigator) || !window.isSecureContext) return;
  (window.requestIdleCallback || setTimeout)(() => {
    navigator.serviceWorker.register(swUrl).then(() => navigator.serviceWorker.ready)
      .then((registration) => {
        const loaded = [location.href.split("#")[0], ...performance.getEntriesByType("resource").map((e) => e.name)];
        registration.active?.postMessage({ type: "cache", urls: loaded.filter((u) => u.startsWith(location.origin)) });
      })
      .catch((error) => console.warn("offline use is not available:", error.message));
  });
}
