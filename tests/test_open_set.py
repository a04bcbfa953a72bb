"""The open-set score (bundle/open_set.py) against a float64 reference written out loop by loop, the
torch path the score is fitted on (tools/open_set_tasks.py) against the bundle's ONNX path, and the
reader's checks of model.json's open_set section."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from server_helpers import PROVISIONAL_OPEN_SET, bundle_with_open_set

from bundle import BundleError, load_bundle, write_card_and_manifest
from bundle.open_set import check_section, input_names, score_inputs, task_setting, threshold, unknown_scores

ROOT = Path(__file__).resolve().parent.parent
SERVED = ROOT / "static" / "models" / "omniglot-20w"
BLOCKS = [[3, 4, 4], [3, 2, 2], [3, 1, 1]]


def reference_inputs(batch, probabilities, labels, classes, blocks):
    """One query's inputs, loop by loop: batch [S + 1][D] lists, the query last."""
    out = [1.0 - max(probabilities)]
    flat, pooled, start = [], [], 0
    for channels, height, width in blocks:
        size = channels * height * width
        rows = [row[start : start + size] for row in batch]
        means_of_channels = [
            [sum(r[c * height * width : (c + 1) * height * width]) / (height * width) for c in range(channels)]
            for r in rows
        ]
        for views, found in ((rows, flat), (means_of_channels, pooled)):
            query, best = views[-1], -math.inf
            for c in range(classes):
                members = [views[i] for i, label in enumerate(labels) if label == c]
                mean = [sum(v[d] for v in members) / len(members) for d in range(len(query))]
                dot = sum(a * b for a, b in zip(mean, query, strict=True))
                norm = math.sqrt(sum(a * a for a in mean)) * math.sqrt(sum(b * b for b in query))
                best = max(best, dot / norm)
            found.append(1.0 - best)
        start += size
    return out + flat + pooled


def test_score_matches_the_float64_reference():
    rng = np.random.default_rng(0)
    labels = np.array([0, 1, 2, 0, 2, 1, 1])
    classes, queries = 3, 4
    size = sum(c * h * w for c, h, w in BLOCKS)
    features = rng.normal(size=(queries, len(labels) + 1, size)).astype(np.float32)
    probabilities = rng.dirichlet(np.ones(classes), size=queries).astype(np.float32)
    got = score_inputs(features, probabilities, labels, classes, BLOCKS)
    for q in range(queries):
        batch = features[q].astype(np.float64).tolist()
        expected = reference_inputs(batch, probabilities[q].astype(np.float64).tolist(), labels, classes, BLOCKS)
        np.testing.assert_allclose(got[q], expected, rtol=0, atol=1e-12)

    section = dict(PROVISIONAL_OPEN_SET, inputs=input_names(len(BLOCKS)))
    section["mean"], section["scale"], section["weights"] = (
        rng.normal(size=7).tolist(),
        rng.uniform(0.5, 2, 7).tolist(),
        rng.normal(size=7).tolist(),
    )
    scores = unknown_scores(got, section)
    for q in range(queries):
        logit = section["bias"] + sum(
            w * (x - m) / s
            for w, x, m, s in zip(section["weights"], got[q], section["mean"], section["scale"], strict=True)
        )
        assert scores[q] == pytest.approx(1 / (1 + math.exp(-logit)), abs=1e-12)


def test_the_setting_is_the_classes_and_the_fewest_shots():
    assert task_setting([0, 0, 1, 1, 1, 2, 2], 3) == "3x2"
    assert task_setting([0, 1, 2, 3, 4], 5) == "5x1"
    assert threshold(PROVISIONAL_OPEN_SET, "10x5") == 0.6


def test_section_checks_name_the_problem():
    good = dict(PROVISIONAL_OPEN_SET)
    assert check_section(good, 4, (2, 10), (1, 5)) is None
    assert "inputs" in check_section(dict(good, inputs=good["inputs"][:-1]), 4, (2, 10), (1, 5))
    assert "weights" in check_section(dict(good, weights=[0.0] * 8), 4, (2, 10), (1, 5))
    assert "scale" in check_section(dict(good, scale=[0.0] * 9), 4, (2, 10), (1, 5))
    assert "bias" in check_section(dict(good, bias=float("nan")), 4, (2, 10), (1, 5))
    missing = dict(good, thresholds={k: v for k, v in good["thresholds"].items() if k != "7x3"})
    assert "7x3" in check_section(missing, 4, (2, 10), (1, 5))
    assert "thresholds" in check_section(dict(good, thresholds={**good["thresholds"], "2x1": 1.5}), 4, (2, 10), (1, 5))


def test_the_reader_refuses_a_bad_section(tmp_path):
    copy = bundle_with_open_set(SERVED, tmp_path / "bundle", dict(PROVISIONAL_OPEN_SET, bias="high"))
    with pytest.raises(BundleError, match="open_set.bias"):
        load_bundle(copy)
    manifest = json.loads((copy / "model.json").read_text())
    manifest["open_set"]["bias"] = 0.0
    manifest["graphs"]["predict"]["outputs"] = manifest["graphs"]["predict"]["outputs"][:2]
    write_card_and_manifest(copy, manifest)
    with pytest.raises(BundleError, match="features"):
        load_bundle(copy)


def test_without_a_section_there_is_no_score(tmp_path):
    bundle = load_bundle(bundle_with_open_set(SERVED, tmp_path / "bundle", None))
    rng = np.random.default_rng(1)
    result = bundle.adapt(rng.random((4, 1, 28, 28)), [0, 1, 0, 1], rng.random((2, 1, 28, 28)), steps=1)
    assert result.unknown is None and result.unknown_scores is None


def test_adapt_flags_scores_above_the_setting_threshold(tmp_path):
    section = dict(PROVISIONAL_OPEN_SET, thresholds={**PROVISIONAL_OPEN_SET["thresholds"], "2x2": 0.0})
    bundle = load_bundle(bundle_with_open_set(SERVED, tmp_path / "bundle", section))
    rng = np.random.default_rng(2)
    support, queries = rng.random((5, 1, 28, 28)), rng.random((3, 1, 28, 28))
    result = bundle.adapt(support, [0, 1, 0, 1, 1], queries, steps=2)
    assert result.unknown.all()  # "2x2": the fewest examples of a class is 2
    plain = bundle.adapt(support, [0, 1, 0, 1, 1], queries, steps=2, transductive=True)
    np.testing.assert_array_equal(plain.unknown_scores, result.unknown_scores)  # always the per-query batches
    assert ((result.unknown_scores > 0) & (result.unknown_scores < 1)).all()


@pytest.fixture(scope="module")
def open_set_tasks(omniglot_dir, tmp_path_factory):
    checkpoint = ROOT / "checkpoints" / "omniglot-20w1s" / "checkpoint.pt"
    if not checkpoint.is_file():
        pytest.skip("the served model's checkpoint is not here")
    from tools.open_set_tasks import OpenSetTasks

    bundle = SERVED
    if "open_set" not in json.loads((SERVED / "model.json").read_text()):
        bundle = bundle_with_open_set(SERVED, tmp_path_factory.mktemp("served") / "bundle")
    return OpenSetTasks(checkpoint, bundle, omniglot_dir)


def test_the_fitted_inputs_are_the_products(open_set_tasks):
    """The torch path the score is fitted on computes what Bundle.adapt (ONNX) computes."""
    tasks = open_set_tasks
    _, params, support, labels, queries = next(tasks.adapted("test", 3, 2, 2, seed=5))
    ink = queries.amax((2, 3, 4))  # [tasks, N + 2]: every query, the scribble too, is a model input in [0, 1]
    assert (ink > 0.5).all() and (ink <= 1).all() and (support.amax() <= 1)
    for task in range(2):
        inputs, logits = tasks.score_inputs(params, task, support[task], labels[task], queries[task], 3)
        result = tasks.bundle.adapt(support[task].numpy(), labels[task].numpy(), queries[task].numpy())
        np.testing.assert_allclose(result.logits, logits, atol=2e-4)
        np.testing.assert_allclose(unknown_scores(inputs, tasks.bundle.open_set), result.unknown_scores, atol=1e-4)


def test_fit_open_set_refuses_bad_flags(capsys):
    from tools.fit_open_set import main

    for argv, flag in (
        (["--bundle", "b", "--checkpoint", "c", "--fit-queries", "0"], "--fit-queries"),
        (["--bundle", "b", "--checkpoint", "c", "--inset-rate", "1.5"], "--inset-rate"),
    ):
        with pytest.raises(SystemExit) as stopped:
            main(argv)
        assert stopped.value.code == 2 and flag in capsys.readouterr().err


def test_fit_recovers_a_planted_threshold():
    """fit(): thresholds flag the asked share of the fitting in-set queries, the figures count right."""
    from tools.fit_open_set import fit

    rng = np.random.default_rng(3)
    names = input_names(1)

    def tasks(count, ways):
        inputs = rng.normal(size=(count, ways + 2, 3))
        inputs[:, ways:, 1] += 4.0  # novel and scribble stand out in one input
        logits = rng.normal(size=(count, ways + 2, ways))
        logits[:, np.arange(ways), np.arange(ways)] += 5.0
        return {"inputs": inputs, "logits": logits}

    runs = {(2, 1): (tasks(2000, 2), tasks(500, 2)), (3, 1): (tasks(2000, 3), tasks(500, 3))}
    section, figures = fit(runs, names, inset_rate=0.1)
    assert set(section["thresholds"]) == {"2x1", "3x1"}
    for (ways, _), (fitting, _) in runs.items():
        flagged = (unknown_scores(fitting["inputs"][:, :ways], section) > section["thresholds"][f"{ways}x1"]).mean()
        assert flagged == pytest.approx(0.1, abs=0.005)
    for row in figures:
        assert row["auroc_novel"] > 0.98 and row["flagged"]["novel"] > 0.9
        assert row["flagged"]["inset"] == pytest.approx(0.1, abs=0.03)
        assert row["accuracy"] > 0.9
