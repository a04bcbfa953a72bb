"""Open-set study: after the demo's adaptation, which score best says "none of these classes"?

Each task: N characters with K drawings each as the support set, and N + 2 queries: one more drawing
of every in-set character, one drawing of an (N+1)-th character of the same split (novel), and one
random scribble (tools/open_set_tasks.py SCRIBBLE, rendered with the demo's pen by tools/strokes.py and preprocessed
by preprocessing/ like a drawing on the page). The model is the checkpoint behind the served bundle,
adapted as the bundle's model.json says (its steps, lr and eps, full-batch TF-style Adam from the
carried state, the head for N classes built by the head rule) and run non-transductively (each query
in one batch with the support set), in torch over many tasks at once (training/reptile.py). The
first --check-bundle held-out tasks of each setting are also adapted by Bundle.adapt (its ONNX
graphs) and the two sets of probabilities compared.

Scores (higher = less like any class), from the same adaptation: softmax confidence (1 - max
probability, also after the fitted temperature), entropy, max logit, energy, top-two logit margin;
distances from the query to the nearest class mean / support drawing in the features before the head
(256 values), Euclidean (relative to the mean distance between class means, raw, or nearest over
second nearest) or cosine, in the adapted network and in the meta-learned one (the same batches
through the un-adapted parameters); cosine to the nearest class mean in the adapted network's earlier
blocks, flat and averaged per channel; disagreement between the transductive prediction (all queries
in one batch) and the non-transductive one; and logistic combinations (COMBOS; "_pooled": one set of
weights fitted over all the run's settings, a threshold per setting).

Everything fitted -- each score's threshold (flag --inset-rate of the in-set queries), the temperature,
the combinations' weights -- comes from --fit-tasks tasks of training characters (--fit-on train), or of
the training characters mirrored left to right (--fit-on mirrored: shapes meta-training never saw, whose
scores are closer to those of unseen characters); the figures are on --tasks tasks of the checkpoint's
held-out characters (the bundle's test_classes.txt). --raw keeps each run's per-query scores, so a
second command with other fitting or settings reuses them.

    python -m benchmarks.open_set_study [--tasks 1000] [--fit-tasks 1000] [--settings 5x1,10x1,10x5,2x1,5x5]
        [--fit-on mirrored] [--out open_set.json] [--plot reliability.png] [--raw DIR]
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.open_set_analysis import (
    COMBOS,
    analyse,
    fit_combination,
    plot_reliability,
)
from tools.open_set_tasks import SCRIBBLE, OpenSetTasks, embed, query_batches

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT = ROOT / "checkpoints" / "omniglot-20w1s" / "checkpoint.pt"
BUNDLE = ROOT / "static" / "models" / "omniglot-20w"
DATA_DIR = Path(os.environ.get("OMNIGLOT_DATA_DIR", ROOT.parent / "shared" / "data" / "omniglot"))


def nearest_cosine(features, ways: int, shots: int):
    """features [q, n + 1, D] (each query's batch: support rows, class-major, then the query) -> [q]:
    1 - the largest cosine similarity between the query and a class mean."""
    import torch

    support, query = features[:, :-1], features[:, -1]
    means = support.reshape(len(query), ways, shots, -1).mean(2)
    unit = torch.nn.functional.normalize
    return 1 - (unit(query, dim=-1)[:, None] * unit(means, dim=-1)).sum(-1).max(1).values


def distance_scores(features, ways: int, shots: int, prefix: str) -> dict:
    """features [q, n + 1, D]: each query's batch (support rows, class-major, then the query) ->
    {name: [q]}: Euclidean distance to the nearest class mean / support drawing over the mean
    distance between class means, and cosine distance to the nearest class mean / drawing."""
    import torch

    support, query = features[:, :-1], features[:, -1]
    means = support.reshape(len(query), ways, shots, -1).mean(2)
    between = torch.cdist(means, means)
    spread = between.sum((1, 2)) / (ways * (ways - 1))
    to_means = torch.cdist(query[:, None], means)[:, 0]
    to_drawings = torch.cdist(query[:, None], support)[:, 0]
    unit = torch.nn.functional.normalize
    cos_drawings = (unit(query, dim=-1)[:, None] * unit(support, dim=-1)).sum(-1)
    two = to_means.topk(2, largest=False).values
    return {
        f"{prefix}_euclid_mean": to_means.min(1).values / spread,
        f"{prefix}_euclid_nearest": to_drawings.min(1).values / spread,
        f"{prefix}_euclid_raw": to_means.min(1).values,
        f"{prefix}_euclid_ratio": two[:, 0] / two[:, 1],
        f"{prefix}_cosine_mean": nearest_cosine(features, ways, shots),
        f"{prefix}_cosine_nearest": 1 - cos_drawings.max(1).values,
    }


def softmax_scores(logits) -> dict:
    """Logits [q, C] -> {name: [q]}, higher = less confident."""
    import torch

    log_p = logits.log_softmax(-1)
    top = logits.topk(2).values
    return {
        "msp": 1 - log_p.exp().max(-1).values,
        "entropy": -(log_p.exp() * log_p).sum(-1),
        "max_logit": -logits.max(-1).values,
        "energy": -torch.logsumexp(logits, -1),
        "margin": top[:, 1] - top[:, 0],
    }


class Study(OpenSetTasks):
    """The checkpoint, its adaptation settings (from the bundle) and the character splits
    (tools/open_set_tasks.py), with every candidate score of the adapted tasks."""

    def tasks(self, split: str, ways: int, shots: int, count: int, seed: int, check: int = 0, progress=None) -> dict:
        """Adapt and score `count` tasks -> {"scores": {name: [tasks, N + 2]}, "logits": [tasks, N + 2, N],
        "bundle_max_abs_diff": float | None}; query N is the novel character, N + 1 the scribble."""
        import torch

        scores, logits, check_diff = {}, [], []
        for meta, params, support, labels, queries in self.adapted(split, ways, shots, count, seed):
            with torch.no_grad():
                for task in range(len(support)):
                    found = self.score_task(params, meta, task, support[task], queries[task], ways, shots)
                    logits.append(found.pop("logits"))
                    for name, values in found.items():
                        scores.setdefault(name, []).append(values.numpy())
                    if len(check_diff) < check:
                        result = self.bundle.adapt(support[task].numpy(), labels[task].numpy(), queries[task].numpy())
                        probabilities = logits[-1].softmax(-1).numpy()
                        check_diff.append(float(np.abs(result.probabilities - probabilities).max()))
            if progress:
                progress(len(support))
        return {
            "scores": {name: np.stack(v) for name, v in scores.items()},
            "logits": np.stack([x.numpy() for x in logits]),
            "bundle_max_abs_diff": max(check_diff) if check_diff else None,
        }

    def score_task(self, adapted, meta, task, support, queries, ways, shots) -> dict:
        """Every score of one task's queries (each in one batch with the support set)."""
        q, n = len(queries), len(support)
        batches = query_batches(support, queries).reshape(1, -1, *support.shape[1:])
        adapted = [p[task : task + 1] for p in adapted]
        found = {}
        for prefix, params in (("adapted", adapted), ("meta", [p[None] for p in meta])):
            blocks, features, logits = embed(self.spec, params, batches, batches=q)
            features = features[0].reshape(n + 1, q, -1).transpose(0, 1)  # [q, n + 1, D]
            found.update(distance_scores(features, ways, shots, prefix))
            if prefix == "adapted":
                found["logits"] = logits[0].reshape(n + 1, q, -1)[-1]
                found.update(softmax_scores(found["logits"]))
                for b, h in enumerate(blocks, 1):  # the earlier blocks' outputs, flat and averaged per channel
                    h = h.reshape(n + 1, q, *h.shape[1:]).transpose(0, 1)  # [q, n + 1, F, H, W]
                    if b < len(blocks):
                        found[f"adapted_block{b}_cosine_mean"] = nearest_cosine(h.flatten(2), ways, shots)
                    found[f"adapted_block{b}_pooled_cosine_mean"] = nearest_cosine(h.mean((-2, -1)), ways, shots)
        _, _, together = embed(self.spec, adapted, queries[None])
        p_alone, p_together = found["logits"].softmax(-1), together[0].softmax(-1)
        found["disagreement"] = (p_alone.argmax(-1) != p_together.argmax(-1)).float()
        found["disagreement_tv"] = 0.5 * (p_alone - p_together).abs().sum(-1)
        return found


def collect(study, raw: Path | None, split, ways, shots, count, seed, check) -> tuple:
    """study.tasks, or what an earlier run with the same arguments saved under `raw` -> (result, wall_s)."""
    from tqdm import tqdm

    path = raw / f"{split}-{ways}x{shots}-{count}-seed{seed}.npz" if raw else None
    if path and path.exists():
        with np.load(path) as stored:
            scores = {k[len("score.") :]: stored[k] for k in stored.files if k.startswith("score.")}
            diff = float(stored["bundle_max_abs_diff"])
            return {"scores": scores, "logits": stored["logits"], "bundle_max_abs_diff": diff}, float(stored["wall_s"])
    started = time.perf_counter()
    with tqdm(total=count, desc=f"{split} {ways}x{shots}", unit="task", file=sys.stderr) as bar:
        result = study.tasks(split, ways, shots, count, seed, check, bar.update)
    wall_s = time.perf_counter() - started
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        diff = np.nan if result["bundle_max_abs_diff"] is None else result["bundle_max_abs_diff"]
        np.savez_compressed(
            path,
            logits=result["logits"],
            bundle_max_abs_diff=diff,
            wall_s=wall_s,
            **{f"score.{k}": v for k, v in result["scores"].items()},
        )
    return result, wall_s


def parse_settings(text: str) -> list:
    """ "5x1,10x5" -> [(5, 1), (10, 5)]."""
    try:
        settings = [tuple(int(v) for v in item.split("x")) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WAYSxSHOTS[,...] such as 5x1,10x5, got {text!r}") from None
    if any(len(s) != 2 or s[0] < 2 or s[1] < 1 for s in settings):
        raise argparse.ArgumentTypeError(f"expected WAYSxSHOTS with WAYS >= 2 and SHOTS >= 1, got {text!r}")
    return settings


def positive(text: str) -> int:
    """An integer >= 1 (argparse type)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def main(argv=None) -> int:
    """Adapt and score every setting's tasks, fit on one split, report on the held-out one."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    parser.add_argument("--bundle", type=Path, default=BUNDLE, help="the bundle exported from --checkpoint")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="Omniglot zips (env OMNIGLOT_DATA_DIR)")
    parser.add_argument(
        "--settings", type=parse_settings, default=parse_settings("5x1,10x1,10x5,2x1,5x5"), help="WAYSxSHOTS,..."
    )
    parser.add_argument("--tasks", type=positive, default=1000, help="held-out tasks per setting (the figures)")
    parser.add_argument("--fit-tasks", type=positive, default=1000, help="training-character tasks per setting")
    parser.add_argument(
        "--fit-on",
        choices=("train", "mirrored"),
        default="mirrored",
        help="fit on the training characters as they are, or mirrored left to right (shapes meta-training never saw)",
    )
    parser.add_argument("--inset-rate", type=float, default=0.05, help="share of in-set queries a threshold flags")
    parser.add_argument("--check-bundle", type=int, default=3, help="held-out tasks also adapted by Bundle.adapt")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the figures here (JSON)")
    parser.add_argument("--plot", type=Path, help="write the reliability diagrams here (PNG)")
    parser.add_argument("--raw", type=Path, help="save each run's per-query scores here, and reuse them")
    args = parser.parse_args(argv)
    import torch

    study = Study(args.checkpoint, args.bundle, args.data_dir)
    runs = {}
    for ways, shots in args.settings:
        fit, fit_s = collect(study, args.raw, args.fit_on, ways, shots, args.fit_tasks, args.seed, 0)
        test, test_s = collect(study, args.raw, "test", ways, shots, args.tasks, args.seed, args.check_bundle)
        runs[ways, shots] = fit, test, {"fitting_tasks": fit_s, "held_out": test_s}
    pooled = {}
    if len(runs) > 1:  # one set of weights for every setting (each keeps its own threshold)
        fits = [(fit, ways) for (ways, _), (fit, _, _) in runs.items()]
        pooled = {f"{name}_pooled": fit_combination(fits, columns) for name, columns in COMBOS.items()}
    results = {}
    for (ways, shots), (fit, test, wall_s) in runs.items():
        result = analyse(fit, test, ways, args.inset_rate, pooled)
        result.update(tasks=args.tasks, fit_tasks=args.fit_tasks, bundle_max_abs_diff=test["bundle_max_abs_diff"])
        result["wall_s"] = wall_s
        results[f"{ways}x{shots}"] = result
        print(summary_table(f"{ways}x{shots}", result), flush=True)
    record = {
        "command": "python -m benchmarks.open_set_study " + " ".join(argv if argv is not None else sys.argv[1:]),
        "checkpoint": str(
            args.checkpoint.relative_to(ROOT) if args.checkpoint.is_relative_to(ROOT) else args.checkpoint
        ),
        "adaptation": study.defaults,
        "scribble": SCRIBBLE,
        "fit_on": args.fit_on,
        "inset_rate": args.inset_rate,
        "seed": args.seed,
        "host": f"{platform.machine()} {os.cpu_count()} cpus, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": results,
    }
    if args.out:
        args.out.write_text(json.dumps(record, indent=1) + "\n")
    if args.plot:
        plot_reliability(results, args.plot)
    return 0


def summary_table(setting: str, result: dict) -> str:
    """The candidates of one setting, best AUROC (novel) first."""
    lines = [
        f"{setting}: accuracy {100 * result['accuracy']:.2f} %, ECE {result['ece']['ece']:.4f}, "
        f"T {result['temperature']:.3f} -> ECE {result['ece_temperature']['ece']:.4f}, "
        f"bundle max |dp| {result['bundle_max_abs_diff']}",
        f"{'score':36} {'AUROC nov':>9} {'AUROC scr':>9} {'in-set':>7} {'novel':>7} {'scribble':>8} {'(fit in)':>10}"
        "  at held-out 5 %: novel, scribble",
    ]
    ranked = sorted(result["candidates"].items(), key=lambda kv: -kv[1]["auroc_novel"])
    for name, c in ranked:
        f, h = c["flagged"], c["flagged_at_held_out_threshold"]
        lines.append(
            f"{name:36} {c['auroc_novel']:9.4f} {c['auroc_scribble']:9.4f} {100 * f['inset']:6.1f}% "
            f"{100 * f['novel']:6.1f}% {100 * f['scribble']:7.1f}% {100 * c['flagged_inset_fitting_tasks']:9.1f}%"
            f"  {100 * h['novel']:5.1f}% {100 * h['scribble']:5.1f}%"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
