"""Accuracy against adaptation steps and step size: how many steps the demo needs.

The demo fine-tunes on the whole support set at every step (no mini-batches), from the
meta-trained weights and carried Adam state, like `bundle.adapt`. This measures that procedure
(in torch, which tests/test_export.py shows the ONNX graphs match) on held-out characters for a
grid of steps x lr, N-way K-shot, both prediction modes, and prints a markdown table.

  .venv/bin/python benchmarks/adaptation_steps.py --checkpoint runs/omniglot-5w5s/checkpoint.pt --tasks 1000
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from training.cli import comma_separated, load_trained_flag, positive_float, positive_int, ways_x_shots
from training.data import load_task_data
from training.evaluate import evaluate_modes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared/data/omniglot"
    )
    parser.add_argument("--tasks", type=positive_int, default=1000)
    parser.add_argument(
        "--steps", type=comma_separated(positive_int, "positive integers"), default=[1, 3, 5, 10, 20, 50, 100]
    )
    parser.add_argument(
        "--lrs", type=comma_separated(positive_float, "positive numbers"), default=[0.0015, 0.003, 0.006]
    )
    parser.add_argument(
        "--settings", type=ways_x_shots, default=[(5, 1), (5, 5), (3, 1)], help="ways x shots, comma-separated"
    )
    args = parser.parse_args()
    payload, config, spec, state = load_trained_flag(parser, args.checkpoint)
    data = load_task_data(config.dataset, args.data_dir, config.seed, download=False)
    steps = args.steps
    print(
        f"checkpoint iteration {payload['iteration']} of {config.meta_iters}; {args.tasks} held-out tasks per cell "
        f"(the same tasks in every cell of a setting); accuracy % non-transductive / transductive\n"
    )
    for ways, shots in args.settings:
        if ways != spec.ways:
            print(f"(skipping {ways}x{shots}: this measurement uses the trained {spec.ways}-way head only)\n")
            continue
        print(f"{ways}-way {shots}-shot\n\n| lr \\ steps | " + " | ".join(map(str, steps)) + " |")
        print("|---" * (len(steps) + 1) + "|")
        for lr in args.lrs:
            cells = []
            for n in steps:
                result = evaluate_modes(
                    spec,
                    state,
                    data.test,
                    np.random.default_rng(7),
                    ways=ways,
                    shots=shots,
                    inner_batch=ways * shots,
                    inner_iters=n,
                    lr=lr,
                    tasks=args.tasks,
                )
                cells.append(f"{100 * result[False].accuracy:.1f} / {100 * result[True].accuracy:.1f}")
            print(f"| {lr} | " + " | ".join(cells) + " |", flush=True)
        print()


if __name__ == "__main__":
    main()
