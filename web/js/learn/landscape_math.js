// Reptile, joint training and MAML on a 2-D toy whose answers are exact: the math of the /learn
// page's "Parameter space" (no DOM, so tests/test_learn_math.py checks it against numpy under Node).
//
// Task i has the loss L_i(phi) = 1/2 (a_i . phi - b_i)^2 on the parameters phi = (x, y). Its
// solution manifold (where L_i = 0) is the line a_i . phi = b_i; |a_i| is how steep the loss is.
// Writing r_i = a_i . phi - b_i, the gradient is r_i a_i, and one SGD step of size alpha multiplies
// the residual by c_i = 1 - alpha |a_i|^2. Each algorithm's update, for a sampled task i:
//   Reptile  phi <- phi + eps (phi_k - phi), phi_k after k SGD steps on L_i from phi
//   MAML     phi <- phi - eps grad_phi L_i(phi_k): the k steps differentiated exactly; each step's
//            Jacobian is I - alpha a_i a_i^T, so the gradient is (I - alpha a_i a_i^T)^k r_k a_i
//   joint    phi <- phi - eps grad (1/n) sum_j L_j(phi): one step on the mean loss (no task sampled)
// On average each update is a weighted sum of the r_i a_i, weights w_i (Reptile (1 - c_i^k) / |a_i|^2,
// MAML c_i^(2k), joint 1), so where it settles solves sum_i w_i r_i a_i = 0: `settlingPoint`.
// With weights 1 / |a_i|^2 that is the point closest to all the lines (least squares in distance),
// `closestPoint`; Reptile's weights tend to those as k grows, joint training's never do.

export const ALGORITHMS = ["reptile", "joint", "maml"];

// Four lines a . phi = b, each given as a unit normal n, offset d and steepness s (a = s n, b = s d):
// steep and shallow tasks, so that the three algorithms settle at visibly different points.
export const TASKS = [
  { normal: [1, 0], offset: 1.5, steepness: 1.5 },
  { normal: [0, 1], offset: 1.2, steepness: 0.5 },
  { normal: [Math.SQRT1_2, Math.SQRT1_2], offset: -1.0, steepness: 1.0 },
  { normal: [Math.SQRT1_2, -Math.SQRT1_2], offset: -1.6, steepness: 0.7 },
].map(({ normal, offset, steepness }) => ({ a: normal.map((v) => v * steepness), b: offset * steepness }));

const dot = (u, v) => u[0] * v[0] + u[1] * v[1];

export const residual = (task, phi) => dot(task.a, phi) - task.b;

export const loss = (task, phi) => 0.5 * residual(task, phi) ** 2;

export const gradient = (task, phi) => {
  const r = residual(task, phi);
  return [r * task.a[0], r * task.a[1]];
};

export const distance = (p, q) => Math.hypot(p[0] - q[0], p[1] - q[1]);

// The distance from phi to the task's line.
export const distanceToLine = (task, phi) => Math.abs(residual(task, phi)) / Math.hypot(...task.a);

// k SGD steps of size `innerStep` on the task's loss from phi -> every point visited, phi first.
export function sgdPath(task, phi, k, innerStep) {
  const path = [phi];
  let p = phi;
  for (let step = 0; step < k; step++) {
    const g = gradient(task, p);
    p = [p[0] - innerStep * g[0], p[1] - innerStep * g[1]];
    path.push(p);
  }
  return path;
}

// MAML's meta-gradient for one task: the gradient at phi_k carried back through the k steps.
export function mamlGradient(task, phi, k, innerStep) {
  const path = sgdPath(task, phi, k, innerStep);
  let v = gradient(task, path[k]);
  const { a } = task;
  for (let step = 0; step < k; step++) {
    const along = dot(a, v); // (I - alpha a a^T)^T v = v - alpha a (a . v)
    v = [v[0] - innerStep * a[0] * along, v[1] - innerStep * a[1] * along];
  }
  return v;
}

// The mean loss's gradient over all tasks.
export function meanGradient(tasks, phi) {
  const g = [0, 0];
  for (const task of tasks) {
    const gi = gradient(task, phi);
    g[0] += gi[0] / tasks.length;
    g[1] += gi[1] / tasks.length;
  }
  return g;
}

// One iteration of `algorithm` from phi on task index `taskIndex` (ignored by joint training) ->
// {phi: the new start, inner: the inner loop's path (Reptile and MAML; [] for joint)}.
// settings: {k, innerStep, metaStep}.
export function update(algorithm, tasks, taskIndex, phi, { k, innerStep, metaStep }) {
  if (algorithm === "joint") {
    const g = meanGradient(tasks, phi);
    return { phi: [phi[0] - metaStep * g[0], phi[1] - metaStep * g[1]], inner: [] };
  }
  const task = tasks[taskIndex];
  const inner = sgdPath(task, phi, k, innerStep);
  if (algorithm === "reptile") {
    const end = inner[k];
    return { phi: [phi[0] + metaStep * (end[0] - phi[0]), phi[1] + metaStep * (end[1] - phi[1])], inner };
  }
  if (algorithm === "maml") {
    const g = mamlGradient(task, phi, k, innerStep);
    return { phi: [phi[0] - metaStep * g[0], phi[1] - metaStep * g[1]], inner };
  }
  throw new RangeError(`algorithm: expected one of ${ALGORITHMS.join(", ")}, got ${algorithm}`);
}

// The point phi with sum_i w_i r_i(phi) a_i = 0 (a 2 x 2 linear system), or null when the weighted
// tasks do not pin one down (e.g. every weight about 0).
export function weightedSolution(tasks, weights) {
  let m00 = 0;
  let m01 = 0;
  let m11 = 0;
  let v0 = 0;
  let v1 = 0;
  tasks.forEach(({ a, b }, i) => {
    const w = weights[i];
    m00 += w * a[0] * a[0];
    m01 += w * a[0] * a[1];
    m11 += w * a[1] * a[1];
    v0 += w * b * a[0];
    v1 += w * b * a[1];
  });
  const det = m00 * m11 - m01 * m01;
  const scale = Math.max(m00, m11);
  if (!(scale > 0) || Math.abs(det) <= 1e-12 * scale * scale) return null;
  return [(m11 * v0 - m01 * v1) / det, (m00 * v1 - m01 * v0) / det];
}

// The point closest to all the tasks' lines: the least sum of squared distances.
export const closestPoint = (tasks) => weightedSolution(tasks, tasks.map(({ a }) => 1 / dot(a, a)));

// Each task's weight in the algorithm's average update (see the top of this file).
export function averageWeights(algorithm, tasks, { k, innerStep }) {
  return tasks.map(({ a }) => {
    const c = 1 - innerStep * dot(a, a);
    if (algorithm === "reptile") return (1 - c ** k) / dot(a, a);
    if (algorithm === "maml") return c ** (2 * k);
    if (algorithm === "joint") return 1;
    throw new RangeError(`algorithm: expected one of ${ALGORITHMS.join(", ")}, got ${algorithm}`);
  });
}

// Where the algorithm's average update is zero: the point it settles near (for a small meta step).
export const settlingPoint = (algorithm, tasks, settings) =>
  weightedSolution(tasks, averageWeights(algorithm, tasks, settings));
