// Save the drawings to a JSON file, load one, and the share link (the drawings in the URL fragment).
// The fragment (#d=...) is never sent to a server. The buttons are on the full page only; any page opens a link.
import { $, el } from "./dom.js";
import { decodeFragment, encodeFragment, fromDocument } from "./drawings.js";
import { say, setStatus } from "./status.js";

// savedDocument(): the drawings and settings as drawings.js's document; restore(saved) shows a
// document read by fromDocument(saved, limits); onLoaded(): a file was loaded (adapt to it).
export function setupSaveLoadShare({ savedDocument, restore, limits, onLoaded }) {
  const saveButton = $("#save");
  if (!saveButton) return;
  saveButton.addEventListener("click", () => {
    const blob = new Blob([JSON.stringify(savedDocument())], { type: "application/json" });
    const link = el("a", { href: URL.createObjectURL(blob), download: "reptile-drawings.json" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    say("Drawings saved as reptile-drawings.json");
  });
  $("#load").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (!file) return;
    try {
      restore(fromDocument(JSON.parse(await file.text()), limits));
      say(`Loaded ${file.name}`);
      onLoaded();
    } catch (error) {
      setStatus(`Could not load ${file.name}: ${error.message}`, "error");
    }
  });
  $("#share").addEventListener("click", async () => {
    const fragment = await encodeFragment(savedDocument());
    const url = `${location.origin}${location.pathname}${location.search}#d=${fragment}`;
    history.replaceState(null, "", `#d=${fragment}`);
    const field = $("#share-url");
    field.value = url;
    field.hidden = false;
    field.select();
    try {
      await navigator.clipboard.writeText(url);
      say("Share link copied");
    } catch {
      say("Share link ready to copy");
    }
  });
}

// The drawings of a share link, if the page was opened with one: -> whether they were restored
// (a link that cannot be read says so in the status line).
export async function restoreFromLink(restore, limits) {
  const fragment = location.hash.startsWith("#d=") ? location.hash.slice(3) : "";
  if (!fragment) return false;
  try {
    restore(fromDocument(await decodeFragment(fragment), limits));
    return true;
  } catch (error) {
    setStatus(`The link's drawings could not be read (${error.message}); showing the examples instead.`, "error");
    return false;
  }
}
