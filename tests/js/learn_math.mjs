// web/js/learn/landscape_math.js under Node: evaluate the cases written by tests/test_learn_math.py and
// print the results as JSON (the Python side compares them with numpy). Usage: node tests/js/learn_math.mjs CASE.json
import { readFileSync } from "node:fs";

import {
  closestPoint, mamlGradient, settlingPoint, sgdPath, update,
} from "../../web/js/learn/landscape_math.js";

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
// spec.tasks: [{a, b}]; spec.cases: [{algorithm, taskIndex, phi, k, innerStep, metaStep}]
const { tasks } = spec;
const out = {
  closest: closestPoint(tasks),
  cases: spec.cases.map((c) => ({
    update: update(c.algorithm, tasks, c.taskIndex, c.phi, c).phi,
    path: sgdPath(tasks[c.taskIndex], c.phi, c.k, c.innerStep),
    mamlGradient: mamlGradient(tasks[c.taskIndex], c.phi, c.k, c.innerStep),
    settling: settlingPoint(c.algorithm, tasks, c),
  })),
};
process.stdout.write(JSON.stringify(out));
