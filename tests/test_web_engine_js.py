"""The browser's adaptation code (web/js/engine.js on onnxruntime-web's wasm build, under Node) gives
the probabilities and losses of the Python reference (bundle.Bundle.adapt) within 1e-3, for Adam
and SGD, transductive or not, 3 classes (the first 3 trained rows) and 5 (the trained head)."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bundle import build_head, load_bundle
from server.config import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = DEFAULT_MODEL  # the bundle the server serves by default
SCRIPT = ROOT / "tests" / "js" / "engine_parity.mjs"
ORT = ROOT / "web" / "node_modules" / "onnxruntime-web" / "dist" / "ort.wasm.min.mjs"


def strokes_like(rng, n):
    """n drawing-like 28x28 inputs: a few random thick line segments, blurred into grey edges."""
    images = np.zeros((n, 28, 28), np.float32)
    yy, xx = np.mgrid[0:28, 0:28]
    for image in images:
        for _ in range(rng.integers(2, 5)):
            (y0, x0), (y1, x1) = rng.uniform(4, 24, (2, 2))
            t = np.clip(
                ((yy - y0) * (y1 - y0) + (xx - x0) * (x1 - x0)) / max((y1 - y0) ** 2 + (x1 - x0) ** 2, 1e-6), 0, 1
            )
            distance = np.hypot(yy - (y0 + t * (y1 - y0)), xx - (x0 + t * (x1 - x0)))
            image[:] = np.maximum(image, np.clip(1.6 - distance, 0, 1))
    return images


@pytest.mark.slow
def test_engine_js_matches_the_python_bundle_reader(tmp_path):
    node = shutil.which("node")
    if node is None or not ORT.is_file():
        pytest.skip("node or web/node_modules/onnxruntime-web (make setup) is missing")
    bundle = load_bundle(BUNDLE)
    rng = np.random.default_rng(5)
    cases = []
    for classes, shots, queries, optimizer, transductive, steps in [
        (3, 1, 1, "adam", False, 20),
        (5, 2, 3, "adam", True, 10),
        (2, 1, 2, "sgd", False, 10),
    ]:
        support = strokes_like(rng, classes * shots)
        labels = np.repeat(np.arange(classes), shots)
        query = strokes_like(rng, queries)
        reference = bundle.adapt(
            support,
            labels,
            query,
            steps=steps,
            optimizer=optimizer,
            transductive=transductive,
            lr=0.0015 if optimizer == "adam" else 0.05,
        )
        cases.append(
            {
                "support": support.reshape(len(support), -1).tolist(),
                "labels": labels.tolist(),
                "queries": query.reshape(len(query), -1).tolist(),
                "steps": steps,
                "optimizer": optimizer,
                "transductive": transductive,
                "lr": 0.0015 if optimizer == "adam" else 0.05,
                "reference": reference,
            }
        )
    spec = {"bundle": str(BUNDLE), "cases": [{k: v for k, v in c.items() if k != "reference"} for c in cases]}
    (tmp_path / "case.json").write_text(json.dumps(spec))
    result = subprocess.run(
        [node, str(SCRIPT), str(tmp_path / "case.json")], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    for case, got in zip(cases, out["cases"], strict=False):
        ref = case["reference"]
        assert np.abs(np.array(got["probabilities"]) - ref.probabilities).max() < 1e-3
        assert np.allclose(got["losses"], ref.losses, atol=1e-3, rtol=1e-4)
        assert got["predictions"] == ref.predictions.tolist()
    weight, bias = build_head(bundle._tensors["fc.weight"], bundle._tensors["fc.bias"], 3, bundle.trained_ways)
    assert np.array_equal(np.float32(out["head3"]["weight"]), weight[0, :8])
    assert np.array_equal(np.float32(out["head3"]["bias"]), bias)
