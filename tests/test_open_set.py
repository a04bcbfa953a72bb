"""The open-set score (bundle/open_set.py) against a float64 reference written out loop by loop, the
torch path the score is fitted on (tools/open_set_tasks.py) against the bundle's ONNX path, and the
reader's checks of model.json's open_set section."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from server_helpers import PROVISIONAL_OPEN_SET, bank_section, bundle_with_bank, bundle_with_open_set

from bundle import BundleError, load_bundle, write_card_and_manifest
from bundle.open_set import (
    REFERENCES_FILE,
    SPREAD_FLOOR,
    check_section,
    input_names,
    reference_statistics,
    score_inputs,
    task_setting,
    threshold,
    unknown_scores,
)

ROOT = Path(__file__).resolve().parent.parent
SERVED = ROOT / "static" / "models" / "omniglot-20w"
BLOCKS = [[3, 4, 4], [3, 2, 2], [3, 1, 1]]


def loop_cosines(batch, labels, classes, blocks):
    """Loop by loop: batch [S + r][D] lists -> per view (flat blocks, then pooled blocks), per row after
    the S support rows, per class: the row's cosine with the class mean of the support rows."""
    flat, pooled, start = [], [], 0
    for channels, height, width in blocks:
        size = channels * height * width
        rows = [row[start : start + size] for row in batch]
        means_of_channels = [
            [sum(r[c * height * width : (c + 1) * height * width]) / (height * width) for c in range(channels)]
            for r in rows
        ]
        for views, found in ((rows, flat), (means_of_channels, pooled)):
            per_row = []
            for row in views[len(labels) :]:
                per_class = []
                for c in range(classes):
                    members = [views[i] for i, label in enumerate(labels) if label == c]
                    mean = [sum(v[d] for v in members) / len(members) for d in range(len(row))]
                    dot = sum(a * b for a, b in zip(mean, row, strict=True))
                    norm = math.sqrt(sum(a * a for a in mean)) * math.sqrt(sum(b * b for b in row))
                    per_class.append(dot / norm)
                per_row.append(per_class)
            found.append(per_row)
        start += size
    return flat + pooled


def reference_inputs(batch, probabilities, labels, classes, blocks, bank_batch=None):
    """One query's inputs, loop by loop: batch [S + 1][D] lists, the query last; bank_batch [S + R][D]."""
    views = [rows[0] for rows in loop_cosines(batch, labels, classes, blocks)]  # the query's, per view
    out = [1.0 - max(probabilities)] + [1.0 - max(cosines) for cosines in views]
    if bank_batch is None:
        return out
    for cosines, bank in zip(views, loop_cosines(bank_batch, labels, classes, blocks), strict=True):
        z = []
        for c in range(classes):
            column = [row[c] for row in bank]
            mean = sum(column) / len(column)
            spread = math.sqrt(sum((x - mean) ** 2 for x in column) / len(column)) + SPREAD_FLOOR
            z.append((cosines[c] - mean) / spread)
        out.append(-max(z))
    return out


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


def test_bank_z_scores_match_the_float64_reference():
    rng = np.random.default_rng(4)
    labels = np.array([1, 0, 2, 2, 0, 1])
    classes, queries, references = 3, 3, 5
    size = sum(c * h * w for c, h, w in BLOCKS)
    features = rng.normal(size=(queries, len(labels) + 1, size)).astype(np.float32)
    bank = rng.normal(size=(len(labels) + references, size)).astype(np.float32)
    probabilities = rng.dirichlet(np.ones(classes), size=queries)
    reference = reference_statistics(bank, labels, classes, BLOCKS)
    assert [a.shape for a in reference] == [(2 * len(BLOCKS), classes)] * 2
    got = score_inputs(features, probabilities, labels, classes, BLOCKS, reference)
    assert got.shape == (queries, 1 + 4 * len(BLOCKS))
    np.testing.assert_array_equal(
        got[:, : 1 + 2 * len(BLOCKS)], score_inputs(features, probabilities, labels, 3, BLOCKS)
    )
    for q in range(queries):
        batch, bank_batch = features[q].astype(np.float64).tolist(), bank.astype(np.float64).tolist()
        expected = reference_inputs(batch, probabilities[q].tolist(), labels, classes, BLOCKS, bank_batch)
        np.testing.assert_allclose(got[q], expected, rtol=0, atol=1e-9)


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
    banked = bank_section()
    assert check_section(banked, 4, (2, 10), (1, 5)) is None
    assert "inputs" in check_section(dict(banked, inputs=good["inputs"]), 4, (2, 10), (1, 5))  # z inputs need a bank
    unbanked = {k: v for k, v in banked.items() if k != "references"}
    assert "inputs" in check_section(unbanked, 4, (2, 10), (1, 5))  # and a bank needs them
    for bad in (
        {"file": REFERENCES_FILE},
        {"file": 3, "shape": [4, 1, 28, 28]},
        {"file": "x", "shape": [1, 1, 28, 28]},
    ):
        assert "references" in check_section(dict(banked, references=bad), 4, (2, 10), (1, 5))


def test_the_reader_loads_the_bank_and_refuses_a_bad_one(tmp_path):
    copy, bank = bundle_with_bank(SERVED, tmp_path / "bundle")
    bundle = load_bundle(copy)
    np.testing.assert_array_equal(bundle.open_set_references, bank.astype(np.float32) / np.float32(255))
    assert bundle.open_set["references"]["shape"] == [4, 1, 28, 28]
    assert REFERENCES_FILE in (copy / "MODEL_CARD.md").read_text()
    rng = np.random.default_rng(7)
    result = bundle.adapt(rng.random((4, 1, 28, 28)), [0, 1, 0, 1], rng.random((2, 1, 28, 28)), steps=1)
    assert ((result.unknown_scores > 0) & (result.unknown_scores < 1)).all()
    (copy / REFERENCES_FILE).write_bytes(bank.tobytes()[:-1])
    with pytest.raises(BundleError, match=REFERENCES_FILE):  # its sha256
        load_bundle(copy)
    (copy / REFERENCES_FILE).write_bytes(bank.tobytes())
    manifest = json.loads((copy / "model.json").read_text())
    manifest["open_set"]["references"]["shape"] = [5, 1, 28, 28]  # more drawings than the file holds
    write_card_and_manifest(copy, manifest)
    with pytest.raises(BundleError, match=f"{REFERENCES_FILE}: 3136 bytes"):
        load_bundle(copy)
    manifest["open_set"]["references"]["shape"] = [4, 1, 28, 27]
    write_card_and_manifest(copy, manifest)
    with pytest.raises(BundleError, match="references.shape"):
        load_bundle(copy)
    manifest["open_set"]["references"]["file"] = "other.u8"
    write_card_and_manifest(copy, manifest)
    with pytest.raises(BundleError, match="other.u8"):
        load_bundle(copy)
    write_open_set_again = bundle_with_open_set(copy, tmp_path / "plain", PROVISIONAL_OPEN_SET)
    assert not (write_open_set_again / REFERENCES_FILE).exists()
    assert REFERENCES_FILE not in json.loads((write_open_set_again / "model.json").read_text())["files"]


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
    import torch

    tasks = open_set_tasks
    _, params, support, labels, queries = next(tasks.adapted("test", 3, 2, 2, seed=5))
    ink = queries.amax((2, 3, 4))  # [tasks, N + 2]: every query, the scribble too, is a model input in [0, 1]
    assert (ink > 0.5).all() and (ink <= 1).all() and (support.amax() <= 1)
    references = tasks.bundle.open_set_references  # the served section's bank, when it has one
    bank = None if references is None else torch.from_numpy(references)
    for task in range(2):
        inputs, logits = tasks.score_inputs(params, task, support[task], labels[task], queries[task], 3, bank)
        result = tasks.bundle.adapt(support[task].numpy(), labels[task].numpy(), queries[task].numpy())
        np.testing.assert_allclose(result.logits, logits, atol=2e-4)
        np.testing.assert_allclose(unknown_scores(inputs, tasks.bundle.open_set), result.unknown_scores, atol=1e-4)


def test_the_fitted_inputs_with_the_bank_are_the_products(open_set_tasks, tmp_path):
    """With a bank, the torch path's z-score inputs are what Bundle.adapt (ONNX) computes."""
    from training.tasks import to_tensor

    tasks = open_set_tasks
    copy, bank = bundle_with_bank(SERVED, tmp_path / "bundle", count=6)
    bundle = load_bundle(copy)
    _, params, support, labels, queries = next(tasks.adapted("test", 4, 1, 2, seed=8))
    for task in range(2):
        inputs, _ = tasks.score_inputs(params, task, support[task], labels[task], queries[task], 4, to_tensor(bank))
        assert inputs.shape == (6, 17)
        result = bundle.adapt(support[task].numpy(), labels[task].numpy(), queries[task].numpy())
        np.testing.assert_allclose(unknown_scores(inputs, bundle.open_set), result.unknown_scores, atol=1e-4)
    first = tasks.reference_bank(3)
    assert first.shape == (3, 1, 28, 28) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, tasks.reference_bank(3))  # the same bank every time


def test_fit_open_set_refuses_bad_flags(capsys):
    from tools.fit_open_set import main

    for argv, flag in (
        (["--bundle", "b", "--checkpoint", "c", "--fit-queries", "0"], "--fit-queries"),
        (["--bundle", "b", "--checkpoint", "c", "--inset-rate", "1.5"], "--inset-rate"),
        (["--bundle", "b", "--checkpoint", "c", "--references", "1"], "--references"),
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
