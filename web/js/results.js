// The predictions: a bar per class under each test drawing, and a spoken summary of each prediction.
// When comparing, a second set of bars shows the same adaptation without meta-learning. A test drawing
// the open-set score flags (result.unknown, open_set.js) reads "None of these" with its score, above
// its bars, which stay but are de-emphasised.
import { testLabel } from "./board.js";
import { $, el } from "./dom.js";
import { say } from "./status.js";

const predictions = $("#predictions");

export function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

// What the page shows and says for a flagged test drawing.
export const noneOfThese = (score) => `None of these (unknown score ${score.toFixed(2)})`;

// unknownScore: the drawing's score when it is flagged, else null
function barList(probabilities, names, title, unknownScore = null) {
  const top = argmax(probabilities);
  const flagged = unknownScore !== null;
  const list = el("ol", { class: "bar-list" });
  probabilities.forEach((p, c) => {
    const fill = el("span", { class: "bar-fill" });
    fill.style.width = `${(100 * p).toFixed(1)}%`; // CSSOM, allowed by the CSP (no style attribute)
    const item = el("li", { class: c === top ? "bar top" : "bar" },
      el("span", { class: "bar-name", text: names[c] ?? `Class ${c + 1}` }),
      el("span", { class: "bar-track", "aria-hidden": "true" }, fill),
      el("span", { class: "bar-value", text: `${(100 * p).toFixed(1)}%` }),
      c === top ? el("span", { class: "bar-mark", text: flagged ? "closest" : "predicted" }) : null);
    list.append(item);
  });
  return el("div", { class: flagged ? "bar-group unknown" : "bar-group" },
    title ? el("p", { class: "bar-title", text: title }) : null,
    flagged ? el("p", { class: "verdict-unknown", text: noneOfThese(unknownScore) }) : null,
    list);
}

// The score of row `row` of a result when the open-set score flags it, else null.
function flaggedScore(result, row) {
  return result.unknown?.[row] === true ? result.unknownScores[row] : null;
}

// result: the last adaptation's (null: none yet); a test drawing it did not classify, or one from
// before the classes changed in number, shows a hint instead of bars.
export function renderPredictions(result, classes, tests) {
  const names = classes.map((c) => c.name);
  for (const [t, drawing] of tests.entries()) {
    if (!drawing.bars) continue;
    const row = result ? result.queryIndex.indexOf(t) : -1;
    if (row < 0 || !result || result.probabilities[row].length !== names.length) {
      drawing.bars.replaceChildren(el("p", { class: "hint", text: drawing.pad.isEmpty() ? "Draw a test character here." : "…" }));
      continue;
    }
    const groups = [barList(result.probabilities[row], names, result.compare ? "With meta-learning (Reptile)" : null,
      flaggedScore(result, row))];
    if (result.compare) groups.push(barList(result.compare.probabilities[row], names, "Without meta-learning (random initialization)"));
    drawing.bars.replaceChildren(...groups);
  }
  predictions.dataset.ready = result ? "true" : "false";
}

export function announcePrediction(result, request) {
  const parts = result.probabilities.map((p, i) => {
    const score = flaggedScore(result, i);
    if (score !== null) return `${testLabel(request.queryIndex[i])}: ${noneOfThese(score)}`;
    const c = argmax(p);
    return `${testLabel(request.queryIndex[i])}: ${request.names[c]} (${Math.round(100 * p[c])}%)`;
  });
  say(`Prediction — ${parts.join("; ")}`);
}
