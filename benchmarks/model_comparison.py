"""Meta-trained checkpoints side by side under the demo's adaptation: which should the demo serve?

Every checkpoint gets the same held-out tasks (C-way K-shot, one query per class), its head
built for C classes by the bundles' rule (trained rows, cycled: benchmarks/head_extension.py), and
the demo's adaptation: --steps full-batch Adam steps at --lr from the carried Adam state. Prints a
markdown table, accuracy % ± 95 % CI, non-transductive / transductive.

  .venv/bin/python benchmarks/model_comparison.py --checkpoints runs/omniglot-5w5s/checkpoint.pt \
      checkpoints/omniglot-20w1s/checkpoint.pt --tasks 500
"""

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.head_extension import state_for_classes
from training.cli import load_trained_flag, positive_float, positive_int, ways_x_shots
from training.data import load_task_data
from training.evaluate import evaluate_modes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", type=Path, nargs="+", required=True)
    parser.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared/data/omniglot"
    )
    parser.add_argument("--tasks", type=positive_int, default=500)
    parser.add_argument(
        "--settings",
        type=ways_x_shots,
        default=[(5, 1), (5, 5), (10, 1), (10, 5), (2, 1), (2, 5)],
        help="classes x shots, comma-separated",
    )
    parser.add_argument("--steps", type=positive_int, default=10)
    parser.add_argument("--lr", type=positive_float, default=0.003)
    args = parser.parse_args()
    models = {path: load_trained_flag(parser, path, "--checkpoints") for path in args.checkpoints}
    splits = {payload["config"]["seed"] for payload, *_ in models.values()}
    if len(splits) != 1:
        parser.error(
            "argument --checkpoints: the checkpoints were trained on different character splits "
            f"(seeds {sorted(splits)}), so no task set is held out for all of them"
        )
    config = next(iter(models.values()))[1]
    data = load_task_data(config.dataset, args.data_dir, config.seed, download=False)

    print(
        f"{args.tasks} held-out tasks per cell, the same tasks for every checkpoint; {args.steps} full-batch Adam "
        f"steps at lr {args.lr}; accuracy % ± 95 % CI, non-transductive / transductive\n"
    )
    names = [f"{path} ({payload['iteration']} it.)" for path, (payload, *_) in models.items()]
    print("| classes x shots | " + " | ".join(names) + " |\n" + "|---" * (len(names) + 1) + "|")
    for classes, shots in args.settings:
        cells = []
        for payload, _, spec, state in models.values():
            result = evaluate_modes(
                dataclasses.replace(spec, ways=classes),
                state_for_classes(state, classes, "trained-rows"),
                data.test,
                np.random.default_rng(21),
                ways=classes,
                shots=shots,
                inner_batch=classes * shots,
                inner_iters=args.steps,
                lr=args.lr,
                tasks=args.tasks,
            )
            cells.append(
                " / ".join(f"{100 * r.accuracy:.2f} ± {100 * r.ci95:.2f}" for r in (result[False], result[True]))
            )
        print(f"| {classes} x {shots} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
