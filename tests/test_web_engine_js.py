"""The browser's adaptation code (web/js/engine.js on onnxruntime-web's wasm build, under Node) gives
the probabilities and losses of the Python reference (bundle.Bundle.adapt) within 1e-3, for Adam
and SGD, transductive or not, 3 classes (the first 3 trained rows) and 5 (the trained head); with an
open-set section, the same unknown scores within 1e-3 and the same flags. web/js/open_set.js is
bundle/open_set.py's arithmetic within 1e-9, and the engine refuses a malformed section."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from node_helpers import node_or_skip, run_node
from server_helpers import bundle_with_bank, bundle_with_open_set

from bundle import build_head, load_bundle, open_set, write_card_and_manifest
from server.config import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = DEFAULT_MODEL  # the bundle the server serves by default
COMPARISON = BUNDLE.parent / f"{BUNDLE.name}-random"  # a comparison start (server/comparisons.py)
SCRIPT = ROOT / "tests" / "js" / "engine_parity.mjs"
OPEN_SET_SCRIPT = ROOT / "tests" / "js" / "open_set_parity.mjs"


def open_set_bundle(tmp_path: Path) -> Path:
    """The served bundle when its model.json has the fitted open-set section, else a copy of it with
    tests/server_helpers.py's provisional one."""
    if open_set.SECTION in json.loads((BUNDLE / "model.json").read_text()):
        return BUNDLE
    return bundle_with_open_set(BUNDLE, tmp_path / "bundle")


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


def adapt_cases(bundle, rng, settings, queries_of=None) -> list:
    """Bundle.adapt on random drawing-like tasks: settings are (classes, shots, queries, optimizer,
    transductive, steps) -> the cases for engine_parity.mjs, each with its Python "reference"."""
    cases = []
    for classes, shots, queries, optimizer, transductive, steps in settings:
        support = strokes_like(rng, classes * shots)
        labels = np.repeat(np.arange(classes), shots)
        query = queries_of(support, queries) if queries_of else strokes_like(rng, queries)
        lr = 0.0015 if optimizer == "adam" else 0.05
        reference = bundle.adapt(
            support, labels, query, steps=steps, optimizer=optimizer, transductive=transductive, lr=lr
        )
        cases.append(
            {
                "support": support.reshape(len(support), -1).tolist(),
                "labels": labels.tolist(),
                "queries": query.reshape(len(query), -1).tolist(),
                "steps": steps,
                "optimizer": optimizer,
                "transductive": transductive,
                "lr": lr,
                "reference": reference,
            }
        )
    return cases


def engine_spec(path: Path, cases: list) -> dict:
    return {"bundle": str(path), "cases": [{k: v for k, v in c.items() if k != "reference"} for c in cases]}


@pytest.mark.slow
def test_engine_js_matches_the_python_bundle_reader(tmp_path):
    node = node_or_skip()
    bundle = load_bundle(BUNDLE)
    rng = np.random.default_rng(5)
    settings = [(3, 1, 1, "adam", False, 20), (5, 2, 3, "adam", True, 10), (2, 1, 2, "sgd", False, 10)]
    cases = adapt_cases(bundle, rng, settings)
    out = run_node(node, SCRIPT, engine_spec(BUNDLE, cases), tmp_path)
    for case, got in zip(cases, out["cases"], strict=True):
        ref = case["reference"]
        assert np.abs(np.array(got["probabilities"]) - ref.probabilities).max() < 1e-3
        assert np.allclose(got["losses"], ref.losses, atol=1e-3, rtol=1e-4)
        assert got["predictions"] == ref.predictions.tolist()
        assert (got["unknownScores"] is None) == (ref.unknown_scores is None)  # the served bundle's section, if any
    weight, bias = build_head(bundle._tensors["fc.weight"], bundle._tensors["fc.bias"], 3, bundle.trained_ways)
    assert np.array_equal(np.float32(out["head3"]["weight"]), weight[0, :8])
    assert np.array_equal(np.float32(out["head3"]["bias"]), bias)


@pytest.mark.slow
@pytest.mark.parametrize("start", ["joint", "random"])
def test_engine_js_adapts_a_comparison_start_on_the_served_graphs(tmp_path, start):
    """A comparison bundle's weights adapted on the served model's graphs (Model.loadStart) give what
    the Python reader gives with that bundle's own graphs, and the replay of the steps (Model.trace)
    gives after step k what an adaptation of k steps gives; a bundle of other graphs, or weights that
    do not match their sha256, are refused."""
    node = node_or_skip()
    folder = BUNDLE.parent / f"{BUNDLE.name}-{start}"
    if not (folder / "model.json").is_file():
        pytest.skip(f"no {folder.name} bundle")
    bundle = load_bundle(folder)
    rng = np.random.default_rng(7)
    settings = [(3, 1, 1, "adam", False, 5), (4, 2, 2, "sgd", True, 4)]
    cases = [{**c, "start": str(folder), "trace": True} for c in adapt_cases(bundle, rng, settings)]
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "weights.safetensors").write_bytes((folder / "weights.safetensors").read_bytes()[:-4] + bytes(4))
    other = tmp_path / "other"  # a model.json of another graph (model.json itself is not hashed)
    shutil.copytree(folder, other)
    manifest = json.loads((other / "model.json").read_text())
    manifest["graphs"]["predict"]["outputs"] = manifest["graphs"]["predict"]["outputs"][:2]
    (other / "model.json").write_text(json.dumps(manifest))
    cases += [{**cases[0], "start": str(broken), "trace": False}, {**cases[0], "start": str(other), "trace": False}]
    out = run_node(node, SCRIPT, engine_spec(BUNDLE, cases), tmp_path)
    for case, got in zip(cases[:2], out["cases"], strict=False):
        ref = case["reference"]
        assert np.abs(np.array(got["probabilities"]) - ref.probabilities).max() < 1e-3
        assert np.allclose(got["losses"], ref.losses, atol=1e-3, rtol=1e-4)
        assert got["unknownScores"] is None
        trace = np.array(got["trace"])
        assert trace.shape == (case["steps"] + 1, len(case["queries"]), max(case["labels"]) + 1)
        assert np.abs(trace[-1] - np.array(got["probabilities"])).max() < 1e-6  # the replay ends at the result
        for k in range(case["steps"]):
            images = [np.array(x, dtype=np.float32).reshape(-1, 1, 28, 28) for x in (case["support"], case["queries"])]
            after = bundle.adapt(
                images[0],
                np.array(case["labels"]),
                images[1],
                steps=k,
                lr=case["lr"],
                optimizer=case["optimizer"],
                transductive=case["transductive"],
            )
            assert np.abs(trace[k] - after.probabilities).max() < 1e-3, k
    assert "sha256" in out["cases"][2]["error"]
    assert out["cases"][3]["error"].startswith("BundleError") and "predict graph differs" in out["cases"][3]["error"]


def known_and_strange(rng):
    """Queries for the open-set score: a copy of a support drawing (like a class), drawing-like
    strokes, and uniform noise (like none)."""

    def make(support, count):
        noise = rng.uniform(0, 1, (1, 28, 28)).astype(np.float32)
        return np.concatenate([support[:1], strokes_like(rng, count - 2), noise])

    return make


@pytest.mark.slow
def test_engine_js_gives_the_python_unknown_scores(tmp_path):
    """Non-transductive and transductive (the score still from the per-query batches), 3 and 6 classes;
    without a section, and for a comparison start, there is no score."""
    node = node_or_skip()
    path = open_set_bundle(tmp_path)
    bundle = load_bundle(path)
    rng = np.random.default_rng(11)
    settings = [(3, 1, 4, "adam", False, 10), (6, 2, 3, "adam", True, 10)]
    cases = adapt_cases(bundle, rng, settings, queries_of=known_and_strange(rng))
    if (COMPARISON / "model.json").is_file():
        cases.append({**cases[0], "start": str(COMPARISON), "reference": None})
    out = run_node(node, SCRIPT, engine_spec(path, cases), tmp_path)
    for case, got in zip(cases[:2], out["cases"], strict=False):
        ref = case["reference"]
        assert np.abs(np.array(got["probabilities"]) - ref.probabilities).max() < 1e-3
        assert np.abs(np.array(got["unknownScores"]) - ref.unknown_scores).max() < 1e-3
        limit = open_set.threshold(bundle.open_set, open_set.task_setting(case["labels"], max(case["labels"]) + 1))
        clear = np.abs(ref.unknown_scores - limit) > 1e-3  # a score this close to the threshold may go either way
        assert np.array_equal(np.array(got["unknown"])[clear], ref.unknown[clear])
    for got in out["cases"][2:]:  # a comparison start has no score
        assert got["unknownScores"] is None and got["unknown"] is None
    plain = bundle_with_open_set(BUNDLE, tmp_path / "plain", section=None)
    out = run_node(node, SCRIPT, engine_spec(plain, cases[:1]), tmp_path)
    assert out["cases"][0]["unknownScores"] is None and out["cases"][0]["unknown"] is None


@pytest.mark.slow
def test_engine_js_gives_the_python_unknown_scores_with_a_bank(tmp_path):
    """A section that reads a bank of reference drawings: the browser fetches and checks the bank and
    gives the Python scores, non-transductive and transductive."""
    node = node_or_skip()
    path, _ = bundle_with_bank(BUNDLE, tmp_path / "bank", count=6)
    bundle = load_bundle(path)
    rng = np.random.default_rng(12)
    cases = adapt_cases(bundle, rng, [(4, 1, 3, "adam", False, 10), (3, 2, 2, "adam", True, 5)])
    out = run_node(node, SCRIPT, engine_spec(path, cases), tmp_path)
    for case, got in zip(cases, out["cases"], strict=True):
        assert np.abs(np.array(got["unknownScores"]) - case["reference"].unknown_scores).max() < 1e-3
    (path / open_set.REFERENCES_FILE).write_bytes(bytes(4 * 784))  # another bank: its sha256 fails
    assert (
        "open_set_references.u8 does not match its sha256"
        in run_node(node, SCRIPT, engine_spec(path, []), tmp_path)["loadError"]
    )
    short, bank = bundle_with_bank(BUNDLE, tmp_path / "short", count=4)
    manifest = json.loads((short / "model.json").read_text())
    manifest[open_set.SECTION]["references"]["shape"] = [5, 1, 28, 28]  # more drawings than the file holds
    write_card_and_manifest(short, manifest)
    error = run_node(node, SCRIPT, engine_spec(short, []), tmp_path)["loadError"]
    assert error == f"BundleError: {open_set.REFERENCES_FILE}: {bank.size} bytes, its shape [5,1,28,28] needs 3920"


def random_section(rng, layers: int, references: bool = False) -> dict:
    """An open-set section with random (valid) values for `layers` blocks (with a bank's z-score inputs),
    scaled so that the scores of random features spread over (0, 1) rather than saturate."""
    names = open_set.input_names(layers, references)
    return {
        "inputs": names,
        "mean": rng.uniform(0.3, 1, len(names)).tolist(),
        "scale": rng.uniform(0.2, 0.5, len(names)).tolist(),
        "weights": rng.normal(0, 0.3, len(names)).tolist(),
        "bias": float(rng.normal()),
        "thresholds": {open_set.setting_key(c, k): float(rng.uniform()) for c in range(2, 11) for k in range(1, 6)},
    }


def test_open_set_js_is_the_python_arithmetic(tmp_path):
    """Score inputs, scores, setting and threshold of fixed random features, probabilities and labels
    (uneven shots included; with a bank's features in some) within 1e-9; a malformed section is refused
    by both sides."""
    node = node_or_skip(runtime=False)
    rng = np.random.default_rng(3)
    cases = []
    for blocks, labels, queries, references in [
        ([[4, 3, 3], [4, 2, 2], [2, 1, 1]], [0, 1, 2, 0, 1], 3, 0),
        ([[3, 2, 2], [5, 1, 1]], [1, 0, 1, 1, 0, 2, 2, 3], 2, 0),
        (json.loads((BUNDLE / "model.json").read_text())["architecture"]["feature_blocks"], [0, 1, 0, 1], 1, 0),
        ([[4, 3, 3], [4, 2, 2], [2, 1, 1]], [0, 1, 2, 0, 1], 3, 5),
        ([[3, 2, 2], [5, 1, 1]], [1, 0, 1, 1, 0, 2, 2, 3], 2, 7),
    ]:
        classes = max(labels) + 1
        d = sum(c * h * w for c, h, w in blocks)
        features = rng.normal(0, 1, (queries, len(labels) + 1, d)) * (rng.uniform(size=d) > 0.3)  # zeros, as ReLU's
        features[0, -1, : np.prod(blocks[0])] = 0  # a query's block 1 all zero: the norms' floor (1e-12)
        probabilities = rng.dirichlet(np.ones(classes), queries)
        bank = rng.normal(0, 1, (len(labels) + references, d)) * (rng.uniform(size=d) > 0.3)
        section = random_section(rng, len(blocks), references=bool(references))
        if references:
            section["references"] = {"file": open_set.REFERENCES_FILE, "shape": [references, 1, 28, 28]}
        cases.append(
            {
                "features": features.reshape(queries, -1).tolist(),
                "probabilities": probabilities.tolist(),
                "labels": labels,
                "classes": classes,
                "blocks": blocks,
                "section": section,
                **({"bank": bank.ravel().tolist(), "references": references} if references else {}),
            }
        )
    manifest = json.loads((BUNDLE / "model.json").read_text())
    manifest[open_set.SECTION] = random_section(rng, len(manifest["architecture"]["feature_blocks"]))
    broken = [
        {**manifest, open_set.SECTION: {**manifest[open_set.SECTION], change: value}}
        for change, value in [
            ("inputs", ["msp"]),
            ("scale", [0.0] * 9),
            ("weights", [1.0] * 8),
            ("bias", "x"),
            ("thresholds", {"2x1": 0.5}),
        ]
    ] + [{**manifest, open_set.SECTION: []}]
    no_features = json.loads(json.dumps(manifest))
    no_features["graphs"]["predict"]["outputs"] = no_features["graphs"]["predict"]["outputs"][:2]
    banked = json.loads(json.dumps(manifest))
    banked[open_set.SECTION] = random_section(rng, len(manifest["architecture"]["feature_blocks"]), references=True)
    banked[open_set.SECTION]["references"] = {"file": open_set.REFERENCES_FILE, "shape": [6, 1, 28, 28]}
    banked["files"][open_set.REFERENCES_FILE] = {"sha256": "0" * 64, "bytes": 4704}
    bad_banks = [
        {**banked, open_set.SECTION: {**banked[open_set.SECTION], "references": references}}
        for references in [
            {"file": open_set.REFERENCES_FILE, "shape": [6, 1, 28, 27]},  # not the input's image shape
            {"file": "other.u8", "shape": [6, 1, 28, 28]},  # not one of the bundle's files
            {"file": open_set.REFERENCES_FILE, "shape": [1, 1, 28, 28]},  # one reference has no spread
            {"file": open_set.REFERENCES_FILE},
        ]
    ] + [{**banked, open_set.SECTION: {**banked[open_set.SECTION], "inputs": manifest[open_set.SECTION]["inputs"]}}]
    bad_banks[-1][open_set.SECTION].update({k: manifest[open_set.SECTION][k] for k in ("mean", "scale", "weights")})
    manifests = [manifest, {k: v for k, v in manifest.items() if k != open_set.SECTION}, *broken, no_features]
    manifests += [banked, *bad_banks]
    out = run_node(node, OPEN_SET_SCRIPT, {"cases": cases, "manifests": manifests}, tmp_path)
    for case, got in zip(cases, out["cases"], strict=True):
        features = np.array(case["features"]).reshape(len(case["probabilities"]), len(case["labels"]) + 1, -1)
        reference = None
        if "bank" in case:
            bank = np.array(case["bank"]).reshape(len(case["labels"]) + case["references"], -1)
            reference = open_set.reference_statistics(bank, case["labels"], case["classes"], case["blocks"])
        inputs = open_set.score_inputs(
            features, case["probabilities"], case["labels"], case["classes"], case["blocks"], reference
        )
        assert np.abs(np.array(got["inputs"]) - inputs).max() < 1e-9
        scores = open_set.unknown_scores(inputs, case["section"])
        assert np.abs(np.array(got["scores"]) - scores).max() < 1e-9
        assert got["setting"] == open_set.task_setting(case["labels"], case["classes"])
        assert got["threshold"] == open_set.threshold(case["section"], got["setting"])
        assert got["problem"] is None
    bank = np.array(out["referenceImages"], dtype=np.float32)  # the page's model input of each byte value
    np.testing.assert_array_equal(bank, open_set.references_as_inputs(np.arange(256, dtype=np.uint8)))
    for sent, got in zip(manifests, out["manifests"], strict=True):
        problem = open_set.manifest_problem(sent, "model.json")
        assert (got is None) == (problem is None), (problem, got)
        if got:
            assert got["name"] == "BundleError" and got["message"].startswith("model.json: open_set")
            assert "\n" not in got["message"]
