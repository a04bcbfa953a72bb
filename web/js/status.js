// The status line and the live region that screen readers announce.
// The status's state is also #demo[data-status] (for styles and tests); Stop is enabled while an
// adaptation runs or waits for a busy server.
import { $ } from "./dom.js";
import { root } from "./startup.js";

const statusLine = $("#status");
const liveRegion = $("#announce");
const stopButton = $("#stop");
let countdown = null; // the timer of the busy server's countdown, while one is shown
let announcedUntil = null; // the end of the newest wait announced (one announcement per wait)

// state: loading, idle, waiting, running, backoff, done, stopped or error
export function setStatus(text, state) {
  clearInterval(countdown);
  countdown = null;
  statusLine.textContent = text;
  root.dataset.status = state;
  stopButton.disabled = state !== "running" && state !== "backoff";
}

// The server asked to wait until `until` (performance.now()): "The server is busy; trying again in N s."
// counted down on the status line; the live region announces it once per wait, not every second.
export function showBackoff(until) {
  const text = () => `The server is busy; trying again in ${Math.max(1, Math.ceil((until - performance.now()) / 1000))} s.`;
  setStatus(text(), "backoff");
  if (until !== announcedUntil) say(text());
  announcedUntil = until;
  countdown = setInterval(() => {
    statusLine.textContent = text();
  }, 250);
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
