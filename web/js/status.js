// The status line and the live region that screen readers announce.
// The status's state is also #demo[data-status] (for styles and tests); Stop is enabled while running.
import { $ } from "./dom.js";
import { root } from "./startup.js";

const statusLine = $("#status");
const liveRegion = $("#announce");
const stopButton = $("#stop");

// state: loading, idle, waiting, running, done, stopped or error
export function setStatus(text, state) {
  statusLine.textContent = text;
  root.dataset.status = state;
  stopButton.disabled = state !== "running";
}

// The running adaptation's progress: "Adapting on the server…" becomes "Adapting on the server — step k/n".
export function showStep(step, steps) {
  statusLine.textContent = statusLine.textContent.replace(/(…| — step \d+\/\d+)$/, ` — step ${step}/${steps}`);
}

export function say(text) {
  liveRegion.textContent = "";
  // a fresh text node so that screen readers announce a repeated message too
  requestAnimationFrame(() => {
    liveRegion.textContent = text;
  });
}

export function formatMs(ms) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}
