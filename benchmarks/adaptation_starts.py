"""The demo's "Compare with" and its optimizer choice, measured: few-shot accuracy of each start
(bundle) after the same full-batch steps, with Adam and with SGD at several step sizes.

Every bundle and optimizer setting adapts the same tasks (held-out characters of the first bundle's
test_classes.txt, one generator per setting as `evaluate-bundle`'s), non-transductive and
transductive from one fine-tuning, as the page does. Adam starts from each bundle's own state (the
meta-learned bundle's carried v and t, the comparison bundles' v = 0, t = 0).

    python -m benchmarks.adaptation_starts [--bundles static/models/omniglot-20w ...]
        [--settings 5x1] [--tasks 300] [--steps 10] [--adam-lr 0.003] [--sgd-lr 0.01 0.03 0.1]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.open_set_study import parse_settings, positive
from bundle import load_bundle
from training.evaluate_bundle import setting_rng, test_sampler
from training.scores import summarize

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "static" / "models"
BUNDLES = [MODELS / "omniglot-20w", MODELS / "omniglot-20w-joint", MODELS / "omniglot-20w-random"]


def positive_float(text: str) -> float:
    """A number > 0 (argparse type)."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def accuracy(bundle, tasks: list, ways: int, steps: int, optimizer: str, lr: float) -> dict:
    """{mode: EvalResult} of `bundle` adapted on each task of `tasks` (uint8 [ways, shots + 1, 1, H, W])."""
    scores = {"non_transductive": [], "transductive": []}
    truth = np.arange(ways)
    for images in tasks:
        pixels = images.astype(np.float32) / 255.0
        support = pixels[:, :-1].reshape(-1, *pixels.shape[2:])
        labels = np.repeat(truth, pixels.shape[1] - 1)
        result = bundle.adapt(support, labels, pixels[:, -1], steps=steps, lr=lr, optimizer=optimizer, classes=ways)
        _, together = bundle.predict(result.params, pixels[:, -1])
        scores["non_transductive"].append(float((result.predictions == truth).mean()))
        scores["transductive"].append(float((together.argmax(-1) == truth).mean()))
    return {mode: summarize(values) for mode, values in scores.items()}


def main(argv=None) -> int:
    """Print one row per setting, bundle and optimizer: accuracy % +- 95 % half-width, both modes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundles", type=Path, nargs="+", default=BUNDLES, help="bundle directories")
    parser.add_argument("--data-dir", type=Path, help="where the Omniglot zips are")
    parser.add_argument("--settings", type=parse_settings, default=parse_settings("5x1"), help="WAYSxSHOTS,...")
    parser.add_argument("--tasks", type=positive, default=300)
    parser.add_argument("--steps", type=positive, default=10)
    parser.add_argument("--adam-lr", type=positive_float, default=0.003)
    parser.add_argument("--sgd-lr", type=positive_float, nargs="*", default=[0.01, 0.03, 0.1])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    missing = [str(b) for b in args.bundles if not (b / "model.json").is_file()]
    if missing:
        parser.error(f"argument --bundles: not a bundle: {', '.join(missing)}")
    bundles = [load_bundle(b, threads=1) for b in args.bundles]
    sampler = test_sampler(bundles[0], args.data_dir, download=False)
    runs = [("adam", args.adam_lr)] + [("sgd", lr) for lr in args.sgd_lr]
    print(f"{args.tasks} tasks a setting, {args.steps} full-batch steps, seed {args.seed}")
    print("accuracy % (95 % half-width); s: seconds of adaptation and prediction")
    print("| setting | start | optimizer | lr | non-transductive | transductive | s |")
    print("|---|---|---|---|---|---|---|")
    for ways, shots in args.settings:
        images, _ = sampler.sample(setting_rng(args.seed, ways, shots), args.tasks, ways, shots + 1)
        for bundle in bundles:
            for optimizer, lr in runs:
                started = time.perf_counter()
                result = accuracy(bundle, list(images), ways, args.steps, optimizer, lr)
                cells = [f"{100 * r.accuracy:.1f} ± {100 * r.ci95:.1f}" for r in result.values()]
                print(
                    f"| {ways}x{shots} | {bundle.manifest['name']} | {optimizer} | {lr:g} | {' | '.join(cells)} "
                    f"| {time.perf_counter() - started:.0f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
