// The /learn page's state in its URL query, so that a teacher can share a prepared view. The server
// reads `view` and `theme` (and refuses bad values); every other field is read here, and a value out
// of range or malformed is ignored (its default used), so an old or edited link still opens.
//
//   K           points a "New wave" samples: 5 or 10            steps       the slider, 0..32
//   points      the sine points, "x:y,x:y" (2 decimals)         wave        the hidden wave, "A:phase"
//   algorithm   reptile | joint | maml                          k           inner steps, 1..20
//   inner_step  inner step size, 0.05..0.85                     meta_step   meta step size, 0.05..1
//   phi         the start in parameter space, "x:y"             waves_seed  the Taylor part's waves
//   projector   1 for projector mode
import { ALGORITHMS } from "./landscape_math.js";

export const LIMITS = {
  steps: [0, 32],
  k: [1, 20],
  innerStep: [0.05, 0.85],
  metaStep: [0.05, 1],
  phi: [-3, 3],
  sineX: [-5, 5],
  sineY: [-6, 6],
  maxPoints: 20,
};

export const DEFAULTS = {
  K: 10,
  steps: 32,
  points: [],
  wave: null,
  algorithm: "reptile",
  k: 5,
  innerStep: 0.5,
  metaStep: 0.25,
  phi: [-2.4, -2.2],
  wavesSeed: 1,
  projector: false,
};

const inRange = (value, [lo, hi]) => Number.isFinite(value) && value >= lo && value <= hi;
const integer = (text, range) => (/^\d+$/.test(text ?? "") && inRange(Number(text), range) ? Number(text) : undefined);
const number = (text, range) => (text && inRange(Number(text), range) ? Number(text) : undefined);

// "x:y" -> [x, y] when both are numbers in their ranges
function pair(text, xRange, yRange) {
  const parts = (text ?? "").split(":");
  if (parts.length !== 2 || parts.some((p) => p === "")) return undefined;
  const [x, y] = parts.map(Number);
  return inRange(x, xRange) && inRange(y, yRange) ? [x, y] : undefined;
}

function points(text) {
  if (!text) return undefined;
  const list = text.split(",").map((p) => pair(p, LIMITS.sineX, LIMITS.sineY));
  return list.length <= LIMITS.maxPoints && list.every(Boolean) ? list : undefined;
}

// URLSearchParams (or a query string) -> the state, defaults where a field is absent or invalid.
export function readState(query) {
  const q = new URLSearchParams(query);
  const read = {
    K: ["5", "10"].includes(q.get("K")) ? Number(q.get("K")) : undefined,
    steps: integer(q.get("steps"), LIMITS.steps),
    points: points(q.get("points")),
    wave: pair(q.get("wave"), [0.1, 5], [0, 2 * Math.PI]),
    algorithm: ALGORITHMS.includes(q.get("algorithm")) ? q.get("algorithm") : undefined,
    k: integer(q.get("k"), LIMITS.k),
    innerStep: number(q.get("inner_step"), LIMITS.innerStep),
    metaStep: number(q.get("meta_step"), LIMITS.metaStep),
    phi: pair(q.get("phi"), LIMITS.phi, LIMITS.phi),
    wavesSeed: integer(q.get("waves_seed"), [1, 1e9]),
    projector: q.get("projector") === "1" ? true : undefined,
  };
  return Object.fromEntries(Object.entries(DEFAULTS).map(([key, value]) => [key, read[key] ?? value]));
}

const round = (value, digits) => String(Number(value.toFixed(digits)));

// The state as query fields (defaults left out), after the fields the server reads (view, theme).
export function queryOf(state, keep) {
  const q = new URLSearchParams();
  for (const name of ["view", "theme"]) if (keep.get(name)) q.set(name, keep.get(name));
  const differs = (key) => JSON.stringify(state[key]) !== JSON.stringify(DEFAULTS[key]);
  if (differs("K")) q.set("K", String(state.K));
  if (differs("steps")) q.set("steps", String(state.steps));
  if (state.points.length) q.set("points", state.points.map(([x, y]) => `${round(x, 2)}:${round(y, 2)}`).join(","));
  if (state.wave) q.set("wave", `${round(state.wave[0], 3)}:${round(state.wave[1], 3)}`);
  if (differs("algorithm")) q.set("algorithm", state.algorithm);
  if (differs("k")) q.set("k", String(state.k));
  if (differs("innerStep")) q.set("inner_step", round(state.innerStep, 2));
  if (differs("metaStep")) q.set("meta_step", round(state.metaStep, 2));
  if (differs("phi")) q.set("phi", `${round(state.phi[0], 2)}:${round(state.phi[1], 2)}`);
  if (differs("wavesSeed")) q.set("waves_seed", String(state.wavesSeed));
  if (state.projector) q.set("projector", "1");
  return q;
}

// Writes the state into the address bar, at most every 250 ms (browsers refuse frequent replaceState calls).
export function urlWriter() {
  let timer = null;
  let latest = null;
  return (state) => {
    latest = state;
    if (timer !== null) return;
    timer = setTimeout(() => {
      timer = null;
      const query = queryOf(latest, new URLSearchParams(location.search)).toString();
      history.replaceState(history.state, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`);
    }, 250);
  };
}
