// Embedding: the iframe snippet, and the messages an embedded demo sends its parent page.
// An embedded demo also waits until it is scrolled into view before it loads or adapts anything.
import { $ } from "./dom.js";
import { postFrameHeight } from "./frame_height.js";
import { argmax } from "./results.js";
import { config, urls } from "./startup.js";
import { say } from "./status.js";

const inFrame = Boolean(config.embed) && window.parent !== window;

// The snippet: an iframe of /embed with this page's settings, and a few lines that follow the
// height messages; with a button to copy it.
export function setupEmbedSnippet() {
  const snippet = $("#embed-code");
  if (!snippet) return;
  const src = new URL(urls.embed || "embed", location.href);
  src.search = new URLSearchParams({ classes: String(config.settings.classes), shots: String(config.settings.shots),
    mode: config.settings.mode, theme: config.settings.theme }).toString();
  snippet.value = `<iframe src="${src.href}" title="Reptile few-shot learning demo" width="100%" height="640" ` +
    `loading="lazy" allow="clipboard-write"></iframe>\n` +
    `<!-- optional: let the demo set its own height -->\n` +
    `<script>addEventListener("message",e=>{if(e.origin==="${src.origin}"&&e.data&&e.data.type==="embed-size")` +
    `for(const f of document.querySelectorAll('iframe[src^="${src.origin}/embed"]'))if(f.contentWindow===e.source)f.height=e.data.height})</script>`;
  $("#copy-embed").addEventListener("click", async () => {
    snippet.select();
    try {
      await navigator.clipboard.writeText(snippet.value);
      say("Embed code copied");
    } catch {
      say("Embed code selected: copy it with Ctrl+C");
    }
  });
}

// The height messages (frame_height.js), when this is the embedded demo in a frame.
export function postHeightChanges() {
  if (inFrame) postFrameHeight();
}

// {type: "reptile:prediction", labels, probabilities, predicted, unknown} for the first test drawing;
// unknown: the open-set score flags it, "none of these" (false when the model has no open-set score).
export function postPrediction(result, request) {
  if (!inFrame) return;
  const p = result.probabilities[0];
  window.parent.postMessage({ type: "reptile:prediction", labels: request.names, probabilities: p, predicted: argmax(p),
    unknown: result.unknown?.[0] === true }, "*");
}

// start() once the element is scrolled into view: an embedded demo loads and adapts nothing before.
export function startWhenVisible(element, start) {
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) {
      observer.disconnect();
      start();
    }
  });
  observer.observe(element);
}
