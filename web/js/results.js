// The predictions: a bar per class under each test drawing, and a spoken summary of each prediction.
// With "Compare with", a second set of bars shows the same adaptation from another start (joint
// training, a random initialization). With "Adaptation step" below the last, the bars are those after
// that step (from the worker's replay, result.trace). A test drawing the open-set score flags
// (result.unknown, open_set.js) reads "None of these" with its score, above its bars, which stay but
// are de-emphasised; the score belongs to the adapted model, so only the result shows it.
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

// The titles of the two sets of bars when comparing (settings.js COMPARISONS).
export const COMPARISON_TITLES = {
  joint: "Joint training (no meta-learning)",
  random: "Random initialization (no meta-learning)",
};

// unknownScore: the drawing's score when it is flagged, else null; kind: "meta" or "compare"
function barList(probabilities, names, title, unknownScore = null, kind = "meta") {
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
  return el("div", { class: `bar-group ${kind}${flagged ? " unknown" : ""}` },
    title ? el("p", { class: "bar-title", text: title }) : null,
    flagged ? el("p", { class: "verdict-unknown", text: noneOfThese(unknownScore) }) : null,
    list);
}

// The score of row `row` of a result when the open-set score flags it, else null.
function flaggedScore(result, row) {
  return result.unknown?.[row] === true ? result.unknownScores[row] : null;
}

// What the bars of `result` show at `step` (null: the result itself): -> {meta, compare} probabilities
// per query (compare null when not comparing), and whether the open-set flags apply.
function atStep(result, step) {
  if (step === null || !result.trace) return { meta: result.probabilities, compare: result.compare?.probabilities, final: true };
  return { meta: result.trace.meta[step], compare: result.trace.compare?.[step], final: false };
}

// result: the last adaptation's (null: none yet); step: the "Adaptation step" shown (null: the
// result). A test drawing it did not classify, or one from before the classes changed in number,
// shows a hint instead of bars.
export function renderPredictions(result, classes, tests, step = null) {
  const names = classes.map((c) => c.name);
  const shown = result ? atStep(result, step) : null;
  for (const [t, drawing] of tests.entries()) {
    if (!drawing.bars) continue;
    const row = result ? result.queryIndex.indexOf(t) : -1;
    if (row < 0 || !result || result.probabilities[row].length !== names.length) {
      drawing.bars.replaceChildren(el("p", { class: "hint", text: drawing.pad.isEmpty() ? "Draw a test character here." : "…" }));
      continue;
    }
    const comparing = Boolean(result.compare && shown.compare);
    const caption = shown.final ? null
      : el("p", { class: "step-caption", text: step === 0 ? "Before the first step" : `After step ${step} of ${result.losses.length}` });
    const groups = [barList(shown.meta[row], names, comparing ? "With meta-learning (Reptile)" : null,
      shown.final ? flaggedScore(result, row) : null)];
    if (comparing) {
      groups.push(barList(shown.compare[row], names, COMPARISON_TITLES[result.compareWith] ?? "Without meta-learning", null, "compare"));
    }
    drawing.bars.replaceChildren(...(caption ? [caption] : []), ...groups);
  }
  predictions.dataset.ready = result ? "true" : "false";
  predictions.dataset.step = shown && !shown.final ? String(step) : "";
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
