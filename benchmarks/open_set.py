"""The product's "none of these" decision, measured through the product: Bundle.adapt on held-out tasks.

Each task: N held-out characters (the bundle's test_classes.txt) with K drawings each as the support
set, and N + 2 queries: one more drawing of every in-set character, one drawing of an (N+1)-th
held-out character (*novel*) and one random scribble (tools/open_set_tasks.py SCRIBBLE, drawn with
the demo's pen and preprocessed as on the page). The tasks are drawn as tools/open_set_tasks.py draws
its "test" tasks (the same seed gives the same tasks as tools/fit_open_set.py's held-out figures).
Each task goes through `Bundle.adapt` with the bundle's defaults: its ONNX graphs, adaptation
settings, open-set score and thresholds. Per setting: AUROC of the unknown score (novel / scribble
against in-set), the share of each kind flagged unknown, in-set accuracy (argmax), ECE of the in-set
probabilities (15 bins) and the wall time, each compared with the goals below.

    python -m benchmarks.open_set [--bundle static/models/omniglot-20w] [--settings 5x1,10x1,10x5]
        [--tasks 1000] [--jobs 2] [--seed 1] [--out open_set.json] [--quick]
"""

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

from benchmarks.open_set_study import parse_settings, positive
from tools.open_set_tasks import SCRIBBLE, character_images, draw_chunks, open_set_figures

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "static" / "models" / "omniglot-20w"
DATA_DIR = Path(os.environ.get("OMNIGLOT_DATA_DIR", ROOT.parent / "shared" / "data" / "omniglot"))
SEED = 1  # tools/fit_open_set.py's: the same held-out tasks as the section's own figures
QUICK = dict(tasks=20, settings=[(5, 1)])

# The feature's goals: (figure, its key in a setting's results, "<=" or ">=", target, the settings it applies to).
GOALS = (
    ("in-set flagged", ("flagged", "inset"), "<=", 0.05, None),
    ("novel flagged", ("flagged", "novel"), ">=", 0.80, None),
    ("scribbles flagged", ("flagged", "scribble"), ">=", 0.95, None),
    ("AUROC novel vs in-set", ("auroc_novel",), ">=", 0.99, {"5x1"}),
    ("ECE", ("ece",), "<=", 0.02, None),
)


def draw_tasks(images: np.ndarray, ways: int, shots: int, count: int, seed: int):
    """Yields (support float32 [N*K, 1, 28, 28], labels [N*K], queries float32 [N + 2, 1, 28, 28]): the
    "test" tasks tools/open_set_tasks.py draws (draw_chunks), one at a time, as Bundle.adapt takes them."""
    labels = np.repeat(np.arange(ways), shots)
    for drawn, scribbles in draw_chunks(images, "test", ways, shots, count, seed):
        drawn = drawn.astype(np.float32) / np.float32(255.0)
        for task in range(len(drawn)):
            support = drawn[task, :ways, :shots].reshape(ways * shots, *drawn.shape[3:])
            queries = np.concatenate([drawn[task, :ways, shots], drawn[task, ways, :1], scribbles[task]])
            yield support, labels, queries


_bundle = None  # each worker process's own Bundle (one onnxruntime thread)


def _load(path: str) -> None:
    """Pool initializer: load the bundle once per worker."""
    global _bundle
    from bundle import load_bundle

    _bundle = load_bundle(path, threads=1)


def _adapt(task: tuple) -> tuple:
    """One task through Bundle.adapt with the bundle's defaults -> (probabilities, unknown scores, flags, s)."""
    support, labels, queries = task
    started = time.perf_counter()
    result = _bundle.adapt(support, labels, queries)
    return result.probabilities, result.unknown_scores, result.unknown, time.perf_counter() - started


def adapt_tasks(tasks, adapt_map) -> dict:
    """Adapt every task (adapt_map: map-like over _adapt) -> probabilities [tasks, N + 2, N], unknown
    scores and flags [tasks, N + 2], the wall time and the mean time of one Bundle.adapt."""
    started = time.perf_counter()
    rows = list(adapt_map(_adapt, tasks))
    return {
        "probabilities": np.stack([r[0] for r in rows]),
        "scores": np.stack([r[1] for r in rows]),
        "flags": np.stack([r[2] for r in rows]),
        "wall_s": time.perf_counter() - started,
        "adapt_s_mean": float(np.mean([r[3] for r in rows])),
    }


def against_fit_record(section: dict, ways: int, shots: int, found: dict) -> dict | None:
    """The section's own held-out figures of this setting (tools/fit_open_set.py, in torch, on the first of
    these same tasks) beside this benchmark's on those tasks; None when it has none or more tasks."""
    record = next((r for r in section.get("held_out") or [] if (r.get("ways"), r.get("shots")) == (ways, shots)), None)
    if not record or record.get("tasks", 0) > len(found["flags"]):
        return None
    n = record["tasks"]
    ours = open_set_figures(found["probabilities"][:n], found["scores"][:n], found["flags"][:n], ways)
    keys = ("auroc_novel", "auroc_scribble", "flagged", "accuracy", "ece")
    return {"tasks": n, "fit_record": {k: record.get(k) for k in keys}, "here": {k: ours[k] for k in keys}}


def verdicts(results: dict) -> list:
    """Every goal that applies to a measured setting -> [{goal, setting, value, target, met}]."""
    found = []
    for name, keys, op, target, settings in GOALS:
        for setting, result in results.items():
            if settings is None or setting in settings:
                value = result
                for key in keys:
                    value = value[key]
                met = value <= target if op == "<=" else value >= target
                found.append(dict(goal=name, setting=setting, value=value, op=op, target=target, met=bool(met)))
    return found


def compare_line(same: dict) -> str:
    """The section's own held-out figures beside this benchmark's on the same tasks."""
    fit, here = same["fit_record"], same["here"]
    parts = []
    for kind in ("inset", "novel", "scribble"):
        theirs = (fit.get("flagged") or {}).get(kind)
        parts.append(f"{kind} {_percent(theirs)} / {_percent(here['flagged'][kind])}")
    return (
        f"  on the first {same['tasks']} tasks, the section's own held-out record (torch) / Bundle.adapt here: "
        f"flagged {', '.join(parts)}; AUROC scribble {_number(fit.get('auroc_scribble'))} / "
        f"{here['auroc_scribble']:.4f}; accuracy {_percent(fit.get('accuracy'))} / {_percent(here['accuracy'])}"
    )


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _number(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def summary(setting: str, result: dict) -> str:
    """One setting's figures as printed."""
    f, ci = result["flagged"], result["flagged_ci95"]
    rates = ", ".join(f"{kind} {100 * f[kind]:.1f} ± {100 * ci[kind]:.1f} %" for kind in ("inset", "novel", "scribble"))
    aurocs = f"AUROC novel {result['auroc_novel']:.4f}, scribble {result['auroc_scribble']:.4f}"
    timing = f"{result['wall_s']:.0f} s ({1000 * result['adapt_s_mean']:.0f} ms per adapt)"
    return (
        f"{setting}: {result['tasks']} tasks, threshold {result['threshold']:.4f}; {aurocs}; flagged: {rates}; "
        f"accuracy {100 * result['accuracy']:.2f} %, ECE {result['ece']:.4f}; {timing}"
    )


def main(argv=None) -> int:
    """Adapt every setting's tasks through the bundle, print the figures and the goals met or not."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=BUNDLE, help="a bundle with an open_set section")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="Omniglot zips (env OMNIGLOT_DATA_DIR)")
    parser.add_argument(
        "--settings", type=parse_settings, default=parse_settings("5x1,10x1,10x5"), help="WAYSxSHOTS,..."
    )
    parser.add_argument("--tasks", type=positive, default=1000, help="tasks per setting")
    parser.add_argument("--jobs", type=positive, default=os.cpu_count() or 1, help="processes adapting tasks")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, help="write the figures here (JSON)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK['tasks']} tasks at 5-way 1-shot only")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.quick:
        args.tasks, args.settings = QUICK["tasks"], QUICK["settings"]
    import onnxruntime

    from bundle import MANIFEST_FILE, BundleError, load_bundle, sha256_file
    from bundle.open_set import setting_key, threshold
    from training.omniglot import DatasetError

    try:
        bundle = load_bundle(args.bundle)
    except BundleError as error:
        parser.exit(2, f"open_set: {error}\n")
    if bundle.open_set is None:
        parser.exit(2, f"open_set: {args.bundle} has no open_set section: it flags nothing to measure\n")
    low, high = bundle.classes_range
    low_shots, high_shots = bundle.shots_range
    for ways, shots in args.settings:
        if not (low <= ways <= high and low_shots <= shots <= high_shots):
            parser.error(
                f"argument --settings: {ways}x{shots} is outside the bundle's {low}-{high} x {low_shots}-{high_shots}"
            )
    try:
        images = character_images(bundle, args.data_dir, bundle.manifest["provenance"]["training_config"]["seed"])[
            "test"
        ]
    except (DatasetError, ValueError) as error:
        parser.exit(2, f"open_set: {error}\n")

    results = {}
    pool = multiprocessing.get_context("spawn").Pool(args.jobs, _load, (str(args.bundle),)) if args.jobs > 1 else None
    if pool is None:
        _load(str(args.bundle))
    adapt_map = partial(pool.imap, chunksize=4) if pool else map
    try:
        for ways, shots in args.settings:
            setting = setting_key(ways, shots)
            found = adapt_tasks(draw_tasks(images, ways, shots, args.tasks, args.seed), adapt_map)
            results[setting] = open_set_figures(found["probabilities"], found["scores"], found["flags"], ways)
            results[setting].update(
                threshold=threshold(bundle.open_set, setting),
                wall_s=found["wall_s"],
                adapt_s_mean=found["adapt_s_mean"],
            )
            print(summary(setting, results[setting]), flush=True)
            same_tasks = against_fit_record(bundle.open_set, ways, shots, found)
            if same_tasks:
                results[setting]["same_tasks_as_fit_record"] = same_tasks
                print(compare_line(same_tasks), flush=True)
    finally:
        if pool:
            pool.close()
            pool.join()
    goals = verdicts(results)
    bundle_path = args.bundle.resolve()
    for g in goals:
        value = f"{100 * g['value']:.1f} %" if "flagged" in g["goal"] else f"{g['value']:.4f}"
        target = f"{100 * g['target']:g} %" if "flagged" in g["goal"] else f"{g['target']:g}"
        print(f"goal {g['goal']} {g['op']} {target} at {g['setting']}: {value} -> {'met' if g['met'] else 'not met'}")
    record = {
        "command": "python -m benchmarks.open_set " + " ".join(argv if argv is not None else sys.argv[1:]),
        "bundle": str(bundle_path.relative_to(ROOT) if bundle_path.is_relative_to(ROOT) else bundle_path),
        "adaptation": bundle.defaults,
        "model_json_sha256": sha256_file(bundle.path / MANIFEST_FILE),
        "open_set_decision": bundle.open_set.get("decision"),
        "scribble": SCRIBBLE,
        "seed": args.seed,
        "host": f"{platform.machine()} {os.cpu_count()} cpus, onnxruntime {onnxruntime.__version__}, "
        f"{args.jobs} processes x 1 thread",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_s": time.perf_counter() - started,
        "settings": results,
        "goals": goals,
    }
    if args.out:
        args.out.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
