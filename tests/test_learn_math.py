"""The /learn page's computations under Node against Python references: web/js/learn/landscape_math.js
(the 2-D Reptile, joint-training and MAML picture) against numpy in float64, and
web/js/learn/sine_engine.js on onnxruntime-web against bundle/regression.py's RegressionBundle (the sine
adaptation within 1e-4, the lr = 1 gradients within float32 rounding)."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from node_helpers import node_or_skip, run_node

from bundle import REGRESSION, load_bundle

ROOT = Path(__file__).resolve().parent.parent
SINE = ROOT / "static" / "models" / "sine"
MATH_SCRIPT = ROOT / "tests" / "js" / "learn_math.mjs"
SINE_SCRIPT = ROOT / "tests" / "js" / "sine_parity.mjs"


# ---------------------------------------------------------------------------- the 2-D picture, in numpy
def sgd_path(a, b, phi, k, alpha):
    """k SGD steps on 1/2 (a . phi - b)^2, every point visited."""
    path = [np.array(phi, float)]
    for _ in range(k):
        p = path[-1]
        path.append(p - alpha * (a @ p - b) * a)
    return np.array(path)


def meta_loss(a, b, phi, k, alpha):
    """MAML's objective for one task: the loss after the k inner steps."""
    end = sgd_path(a, b, phi, k, alpha)[-1]
    return 0.5 * (a @ end - b) ** 2


def numeric_gradient(f, phi, h=1e-5):
    """Central differences."""
    phi = np.asarray(phi, float)
    return np.array([(f(phi + h * e) - f(phi - h * e)) / (2 * h) for e in np.eye(2)])


def mean_update(algorithm, tasks, phi, k, alpha, eps):
    """The algorithm's update from phi averaged over the tasks (joint's takes no sample)."""
    A = np.array([t["a"] for t in tasks])
    B = np.array([t["b"] for t in tasks])
    phi = np.asarray(phi, float)
    if algorithm == "joint":
        return -eps * np.mean([(a @ phi - b) * a for a, b in zip(A, B, strict=True)], axis=0)
    steps = []
    for a, b in zip(A, B, strict=True):
        if algorithm == "reptile":
            steps.append(eps * (sgd_path(a, b, phi, k, alpha)[-1] - phi))
        else:
            steps.append(-eps * numeric_gradient(lambda p, a=a, b=b: meta_loss(a, b, p, k, alpha), phi))
    return np.mean(steps, axis=0)


def test_landscape_math_matches_numpy(tmp_path):
    """Every update, inner path and MAML meta-gradient of random cases; the closest point is the least
    squares point of the distances; each algorithm's average update vanishes at its settling point."""
    node = node_or_skip(runtime=False)
    rng = np.random.default_rng(0)
    tasks = []
    for _ in range(4):
        normal = rng.normal(size=2)
        normal /= np.linalg.norm(normal)
        steepness = rng.uniform(0.5, 1.5)
        tasks.append({"a": (steepness * normal).tolist(), "b": float(steepness * rng.uniform(-2, 2))})
    cases = [
        {
            "algorithm": algorithm,
            "taskIndex": int(rng.integers(len(tasks))),
            "phi": rng.uniform(-3, 3, 2).tolist(),
            "k": int(k),
            "innerStep": float(rng.uniform(0.05, 0.85)),
            "metaStep": float(rng.uniform(0.05, 1)),
        }
        for algorithm in ("reptile", "joint", "maml")
        for k in (1, 3, 8)
    ]
    out = run_node(node, MATH_SCRIPT, {"tasks": tasks, "cases": cases}, tmp_path)

    A = np.array([t["a"] for t in tasks])
    B = np.array([t["b"] for t in tasks])
    norms = np.linalg.norm(A, axis=1)
    closest = np.linalg.lstsq(A / norms[:, None], B / norms, rcond=None)[0]  # distances, not residuals
    assert np.allclose(out["closest"], closest, atol=1e-12)

    for case, got in zip(cases, out["cases"], strict=True):
        a, b, phi = A[case["taskIndex"]], B[case["taskIndex"]], np.array(case["phi"])
        k, alpha, eps = case["k"], case["innerStep"], case["metaStep"]
        path = sgd_path(a, b, phi, k, alpha)
        assert np.allclose(got["path"], path, atol=1e-12)
        maml = numeric_gradient(lambda p, a=a, b=b, k=k, alpha=alpha: meta_loss(a, b, p, k, alpha), phi)
        assert np.allclose(got["mamlGradient"], maml, atol=1e-7)
        expected = {
            "reptile": phi + eps * (path[-1] - phi),
            "maml": phi - eps * maml,
            "joint": phi + mean_update("joint", tasks, phi, k, alpha, eps),
        }[case["algorithm"]]
        assert np.allclose(got["update"], expected, atol=1e-7), case
        settling = np.array(got["settling"])
        assert np.abs(mean_update(case["algorithm"], tasks, settling, k, alpha, eps)).max() < 1e-7, case


def test_the_page_tasks_tell_the_story(tmp_path):
    """On the page's own tasks: Reptile settles ever closer to the closest point as k grows, while joint
    training settles far from it (the steep tasks weigh more in the mean loss)."""
    node = node_or_skip(runtime=False)
    script = tmp_path / "tasks.mjs"
    module = (ROOT / "web" / "js" / "learn" / "landscape_math.js").as_uri()
    script.write_text(
        f'import {{ TASKS, closestPoint, distance, settlingPoint }} from "{module}";\n'
        "const closest = closestPoint(TASKS);\n"
        "const far = (algorithm, k) => distance(settlingPoint(algorithm, TASKS, { k, innerStep: 0.5 }), closest);\n"
        "process.stdout.write(JSON.stringify({ reptile: [1, 5, 10, 50].map((k) => far('reptile', k)),"
        " joint: far('joint', 5) }));\n"
    )
    result = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["reptile"] == sorted(out["reptile"], reverse=True) and out["reptile"][-1] < 1e-3
    assert out["joint"] > 1.0 and out["reptile"][1] < out["joint"] / 2


# ---------------------------------------------------------------------------- the sine model
@pytest.mark.slow
def test_sine_engine_js_matches_the_python_reader(tmp_path):
    """The meta-learned and joint starts over 10 SGD steps on 5 and 10 points of random waves: the loss
    and the fit on a grid after every step within 1e-4; the random start for one step; the three starts'
    gradients (the train step at lr = 1) within float32 rounding of their scale."""
    node = node_or_skip(runtime=True)
    bundle = load_bundle(SINE, task=REGRESSION)
    rng = np.random.default_rng(7)
    grid = np.linspace(-5, 5, 41)
    cases = []
    settings = [(5, "meta-learned", 10), (10, "meta-learned", 10), (10, "joint", 10), (5, "random", 1)]
    for shots, weight_set, steps in settings:
        amplitude, phase = rng.uniform(0.1, 5), rng.uniform(0, 2 * np.pi)
        x = rng.uniform(-5, 5, shots).astype(np.float32)
        y = (amplitude * np.sin(x + phase)).astype(np.float32)
        fit = bundle.adapt(x, y, weight_set=weight_set, steps=steps, lr=0.02, query_x=grid)
        cases.append({
            "x": x.tolist(), "y": y.tolist(), "weightSet": weight_set, "steps": steps, "lr": 0.02,
            "queryX": grid.tolist(), "reference": fit,
        })  # fmt: skip
    x = rng.uniform(-5, 5, 10).astype(np.float32)
    gradient_points = {"x": x.tolist(), "y": (3 * np.sin(x + 1)).astype(np.float32).tolist()}
    spec = {"bundle": str(SINE), "cases": [{k: v for k, v in c.items() if k != "reference"} for c in cases]}
    out = run_node(node, SINE_SCRIPT, {**spec, "gradient": gradient_points}, tmp_path)

    assert out["weightSets"] == bundle.weight_sets
    for case, got in zip(cases, out["cases"], strict=True):
        ref = case["reference"]
        assert np.abs(np.array(got["predictions"]) - ref.predictions[:, :, 0]).max() < 1e-4, case["weightSet"]
        assert np.allclose(got["losses"], ref.losses, rtol=1e-4, atol=1e-5), case["weightSet"]
    for weight_set, got in out["gradients"].items():
        params = bundle.params(weight_set)
        updated, _ = bundle.train_step_sgd(params, gradient_points["x"], gradient_points["y"], 1.0)
        g = np.concatenate([(params[n].astype(np.float64) - updated[n]).ravel() for n in bundle.param_names])
        assert np.abs(np.array(got) - g).max() <= 1e-6 * max(1.0, np.abs(g).max()), weight_set
