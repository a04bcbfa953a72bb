"""Fit a bundle's open-set score ("none of these", bundle/open_set.py) and record it in model.json and
the model card, with its figures on held-out characters at every supported setting.

    python -m tools.fit_open_set --bundle static/models/omniglot-20w \\
        --checkpoint checkpoints/omniglot-20w1s/checkpoint.pt [--fit-queries 3000] [--test-queries 1000] \\
        [--references 60] [--raw DIR] [--plot PNG] [--dry-run]

For every setting the bundle supports (classes x shots), tasks of tools/open_set_tasks.py: fitting
tasks of the training characters mirrored left to right (shapes meta-training never saw, whose scores
resemble unseen characters'), and held-out tasks (test_classes.txt) for the figures only.

0. The bank of --references drawings of training characters (tools/open_set_tasks.py reference_bank),
   written into the bundle: the score's z-score inputs read it (bundle/open_set.py); 0: no bank.
1. One set of weights for every setting: a class-balanced logistic regression of the in-set queries
   against the novel characters and the scribbles, pooled over all fitting tasks.
2. A threshold per setting: the score that flags --inset-rate of that setting's fitting in-set queries.
3. On the held-out tasks of each setting: AUROC (novel and scribble against in-set), the share of each
   kind flagged, accuracy and calibration (ECE, 15 bins; and with a temperature fitted on the fitting
   tasks, to see whether one is needed).

--raw keeps every setting's inputs as it finishes, so an interrupted run continues where it stopped.
"""

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from tools.calibration import fit_logistic, fit_temperature, reliability, softmax
from tools.open_set_tasks import open_set_figures

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("OMNIGLOT_DATA_DIR", ROOT.parent / "shared" / "data" / "omniglot"))
SEED = 1


def collect(tasks, raw: Path | None, split: str, ways: int, shots: int, count: int, bank=None) -> dict:
    """Score inputs [tasks, N + 2, I] and logits [tasks, N + 2, N] of `count` tasks (from --raw when kept);
    bank: the reference drawings as model inputs (torch [R, 1, 28, 28]) or None."""
    from tqdm import tqdm

    references = 0 if bank is None else len(bank)
    path = raw / f"{split}-{ways}x{shots}-{count}-seed{SEED}-references{references}.npz" if raw else None
    if path and path.exists():
        with np.load(path) as stored:
            return {k: stored[k] for k in stored.files}
    started, inputs, logits = time.perf_counter(), [], []
    with tqdm(total=count, desc=f"{split} {ways}x{shots}", unit="task", file=sys.stderr, leave=False) as bar:
        for _, params, support, labels, queries in tasks.adapted(split, ways, shots, count, SEED):
            for task in range(len(support)):
                x, z = tasks.score_inputs(params, task, support[task], labels[task], queries[task], ways, bank)
                inputs.append(x)
                logits.append(z)
            bar.update(len(support))
    found = {"inputs": np.stack(inputs), "logits": np.stack(logits), "wall_s": time.perf_counter() - started}
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path.with_suffix(".tmp.npz"), **found)
        path.with_suffix(".tmp.npz").replace(path)
    return found


def task_count(queries: int, ways: int, least: int) -> int:
    """Tasks for about `queries` in-set queries at `ways` classes, at least `least`."""
    return max(least, math.ceil(queries / ways))


def held_out_figures(scores: np.ndarray, logits: np.ndarray, fit_logits: np.ndarray, ways: int, limit: float) -> dict:
    """One setting's figures on its held-out tasks (scores [tasks, N + 2], logits [tasks, N + 2, N]), and
    the bars' ECE after a temperature fitted on the fitting tasks' logits, to see whether one is needed."""
    probabilities = softmax(logits)
    found = open_set_figures(probabilities, scores, scores > limit, ways)
    in_logits = logits[:, :ways].reshape(-1, ways)
    correct = in_logits.argmax(-1) == np.tile(np.arange(ways), len(logits))
    temperature = fit_temperature(fit_logits[:, :ways].reshape(-1, ways), np.tile(np.arange(ways), len(fit_logits)))
    found["temperature"] = temperature
    found["ece_temperature"] = reliability(softmax(in_logits, temperature).max(-1), correct)["ece"]
    return found


def write_open_set(bundle_dir: Path, section: dict | None, bank: np.ndarray | None = None) -> None:
    """Put `section` into the bundle's model.json as its open-set score (None: remove it), card rewritten;
    bank (uint8 [R, 1, 28, 28]): the reference drawings, written as the section's references file."""
    from bundle import MANIFEST_FILE, write_card_and_manifest
    from bundle.files import sha256_file, write_atomic
    from bundle.open_set import REFERENCES_ENCODING, REFERENCES_FILE, SECTION
    from tools.open_set_tasks import REFERENCE_CHOICE

    bundle_dir = Path(bundle_dir)
    manifest = json.loads((bundle_dir / MANIFEST_FILE).read_text())
    manifest.pop(SECTION, None)
    manifest["files"].pop(REFERENCES_FILE, None)
    if section is not None:
        manifest[SECTION] = section
    if bank is not None:
        path = bundle_dir / REFERENCES_FILE
        write_atomic(path, np.ascontiguousarray(bank, dtype=np.uint8).tobytes())
        manifest["files"][REFERENCES_FILE] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        drawn = f"the first drawing of each of {len(bank)} training characters ({REFERENCE_CHOICE})"
        manifest[SECTION]["references"] = {
            "file": REFERENCES_FILE,
            "shape": list(bank.shape),
            "drawn": drawn,
            "encoding": REFERENCES_ENCODING,
        }
    elif (bundle_dir / REFERENCES_FILE).exists():
        (bundle_dir / REFERENCES_FILE).unlink()
    write_card_and_manifest(bundle_dir, manifest)


def fit(runs: dict, names: list, inset_rate: float) -> dict:
    """runs {(ways, shots): (fitting tasks, held-out tasks)} -> the open-set section's fitted values and figures."""
    from bundle.open_set import setting_key, unknown_scores

    x = np.concatenate([fitting["inputs"].reshape(-1, len(names)) for fitting, _ in runs.values()])
    y = np.concatenate(
        [np.tile(np.r_[np.zeros(ways), 1, 1], len(fitting["inputs"])) for (ways, _), (fitting, _) in runs.items()]
    )
    mean, scale, weights, bias = fit_logistic(x, y)
    section = {
        "inputs": names,
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "weights": weights.tolist(),
        "bias": float(bias),
    }
    thresholds, figures = {}, []
    for (ways, shots), (fitting, held_out) in runs.items():
        fit_scores = unknown_scores(fitting["inputs"], section)
        limit = float(np.quantile(fit_scores[:, :ways], 1 - inset_rate))
        thresholds[setting_key(ways, shots)] = limit
        scores = unknown_scores(held_out["inputs"], section)
        figures.append(
            {
                "ways": ways,
                "shots": shots,
                **held_out_figures(scores, held_out["logits"], fitting["logits"], ways, limit),
            }
        )
    return {**section, "thresholds": thresholds}, figures


def main(argv=None) -> int:
    """Collect every setting's tasks, fit, print the figures, and record them in the bundle."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, required=True, help="the bundle to fit and record into")
    parser.add_argument("--checkpoint", type=Path, required=True, help="the checkpoint --bundle was exported from")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="Omniglot zips (env OMNIGLOT_DATA_DIR)")
    parser.add_argument("--fit-queries", type=int, default=3000, help="in-set queries per setting to fit on")
    parser.add_argument("--test-queries", type=int, default=1000, help="held-out in-set queries per setting")
    parser.add_argument("--references", type=int, default=None, help="drawings in the bank (0: none; default 60)")
    parser.add_argument("--inset-rate", type=float, default=0.05, help="share of in-set queries a threshold flags")
    parser.add_argument("--raw", type=Path, help="keep each setting's inputs here, and reuse them")
    parser.add_argument("--dry-run", action="store_true", help="print the figures, do not write the bundle")
    parser.add_argument("--plot", type=Path, help="write the calibration figure (ECE per setting, reliability) here")
    args = parser.parse_args(argv)
    for flag, value in (("--fit-queries", args.fit_queries), ("--test-queries", args.test_queries)):
        if value < 1:
            parser.error(f"argument {flag}: must be >= 1, got {value}")
    if args.references is not None and (args.references == 1 or args.references < 0):
        parser.error(f"argument --references: must be 0 (no bank) or >= 2, got {args.references}")
    if not 0 < args.inset_rate < 1:
        parser.error(f"argument --inset-rate: must be between 0 and 1, got {args.inset_rate}")
    import torch

    from bundle import MANIFEST_FILE
    from bundle.open_set import input_names
    from tools.open_set_tasks import REFERENCES, SCRIBBLE, OpenSetTasks
    from training.tasks import to_tensor

    tasks = OpenSetTasks(args.checkpoint, args.bundle, args.data_dir)
    count = REFERENCES if args.references is None else args.references
    bank = tasks.reference_bank(count) if count else None
    bank_inputs = None if bank is None else to_tensor(bank)
    (low, high), (low_shots, high_shots) = tasks.bundle.classes_range, tasks.bundle.shots_range
    runs, counts, core_s = {}, {}, 0.0  # core_s: adapting and scoring, one thread (kept runs included)
    for ways in range(low, high + 1):
        for shots in range(low_shots, high_shots + 1):
            n_fit, n_test = task_count(args.fit_queries, ways, 200), task_count(args.test_queries, ways, 100)
            runs[ways, shots] = (
                collect(tasks, args.raw, "mirrored", ways, shots, n_fit, bank_inputs),
                collect(tasks, args.raw, "test", ways, shots, n_test, bank_inputs),
            )
            counts[f"{ways}x{shots}"] = {"fitting": n_fit, "held_out": n_test}
            core_s += sum(float(run["wall_s"]) for run in runs[ways, shots])
            print(f"{ways}x{shots}: {n_fit} fitting and {n_test} held-out tasks", file=sys.stderr, flush=True)
    section, figures = fit(runs, input_names(tasks.spec.layers, bank is not None), args.inset_rate)
    for row in figures:
        f = row["flagged"]
        print(
            f"{row['ways']:2}x{row['shots']}  AUROC novel {row['auroc_novel']:.3f} scribble {row['auroc_scribble']:.3f}"
            f"  flagged in-set {100 * f['inset']:4.1f} % novel {100 * f['novel']:5.1f} % scribble "
            f"{100 * f['scribble']:5.1f} %  accuracy {100 * row['accuracy']:.2f} %  ECE {row['ece']:.4f}"
            f" (T {row['temperature']:.2f}: {row['ece_temperature']:.4f})"
        )
    if args.plot:
        from tools.open_set_plot import plot_calibration

        plot_calibration(runs, figures, args.plot)
    section["decision"] = (
        'unknown when unknown_score > thresholds["<classes>x<shots>"], shots being the fewest examples '
        "any class has; the score reads each query's non-transductive batch (the support set, then the query)"
    )
    section["fitted"] = {
        "on": "tasks of the training characters mirrored left to right, each with one novel character and one scribble",
        "tasks": counts,
        "inset_rate": args.inset_rate,
        "scribble": SCRIBBLE,
        "seed": SEED,
        "command": "python -m tools.fit_open_set " + " ".join(argv if argv is not None else sys.argv[1:]),
        "host": f"{platform.machine()} {os.cpu_count()} cpus, torch {torch.__version__}, one thread per setting",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "compute_s": core_s,
    }
    section["held_out"] = figures
    if not args.dry_run:
        write_open_set(args.bundle, section, bank)
        print(f"recorded in {args.bundle / MANIFEST_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
