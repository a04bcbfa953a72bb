// What the /learn page shares with the demo's page around its parts: projector mode (the class
// "projector" on <html>, styled by demo.css), the embed's height messages to the parent page, and
// offline use through the demo's service worker (/sw.js). The demo's own app.js reads the demo's
// configuration from #demo, so the projector lines follow it here; the height messages are
// frame_height.js's and the service worker's registration service_worker.js's, both shared with the demo.
import { postFrameHeight } from "../frame_height.js";
import { cacheLoaded, registerServiceWorker } from "../service_worker.js";

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
// its modules and styles, onnxruntime-web and the sine bundle). The worker caches what it lacks.
export function startOffline(swUrl) {
  (window.requestIdleCallback || setTimeout)(() => registerServiceWorker(swUrl).then((worker) => cacheLoaded(worker)));
}
