"""How to give the meta-trained 5-way head C classes: measured, not guessed.

Rules (every rule keeps the trained body and its carried Adam state):
  trained-rows  C <= trained ways: the first C trained rows; C > trained ways: the trained rows
                repeated in turn (row i = trained row i mod 5)
  mean          every row = the mean trained row, every bias = the mean bias (the rows start identical)
  mean-except   C == trained ways: the trained head; otherwise the mean rule (what bundle v1 does)
Adam's v for the head follows the same rule. Accuracy on held-out characters, C-way K-shot,
full-batch Adam as the demo adapts, non-transductive / transductive, over --tasks tasks.

  .venv/bin/python benchmarks/head_extension.py --checkpoint runs/omniglot-5w5s/checkpoint.pt
"""

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from training.cli import comma_separated, load_trained_flag, positive_float, positive_int
from training.data import load_task_data
from training.evaluate import evaluate_modes
from training.reptile import MetaState


def head(tensor: torch.Tensor, classes: int, rule: str) -> torch.Tensor:
    trained = tensor.shape[0]
    if rule == "mean" or (rule == "mean-except" and classes != trained):
        return tensor.mean(0, keepdim=True).expand(classes, *tensor.shape[1:]).clone()
    if rule == "mean-except":
        return tensor.clone()
    return tensor[torch.arange(classes) % trained].clone()


def state_for_classes(state: MetaState, classes: int, rule: str) -> MetaState:
    """The trained body and Adam state with the head (and its Adam v) built for `classes` by `rule`."""
    return MetaState(
        state.params[:-2] + [head(p, classes, rule) for p in state.params[-2:]],
        state.adam_v[:-2] + [head(v, classes, rule) for v in state.adam_v[-2:]],
        state.adam_t,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared/data/omniglot"
    )
    parser.add_argument("--tasks", type=positive_int, default=500)
    parser.add_argument("--classes", type=comma_separated(positive_int, "positive integers"), default=[2, 3, 5, 10])
    parser.add_argument("--shots", type=comma_separated(positive_int, "positive integers"), default=[1])
    parser.add_argument("--steps", type=comma_separated(positive_int, "positive integers"), default=[10, 20])
    parser.add_argument("--lr", type=positive_float, default=0.003)
    args = parser.parse_args()
    payload, config, spec, state = load_trained_flag(parser, args.checkpoint)
    data = load_task_data(config.dataset, args.data_dir, config.seed, download=False)
    print(
        f"checkpoint iteration {payload['iteration']}; lr {args.lr}; {args.tasks} held-out tasks per cell "
        f"(the same tasks for every rule); accuracy % non-transductive / transductive\n"
    )
    print("| classes x shots | steps | trained-rows | mean | mean-except |\n|---|---|---|---|---|")
    for classes in args.classes:
        for shots in args.shots:
            for steps in args.steps:
                cells = []
                for rule in ("trained-rows", "mean", "mean-except"):
                    result = evaluate_modes(
                        dataclasses.replace(spec, ways=classes),
                        state_for_classes(state, classes, rule),
                        data.test,
                        np.random.default_rng(11),
                        ways=classes,
                        shots=shots,
                        inner_batch=classes * shots,
                        inner_iters=steps,
                        lr=args.lr,
                        tasks=args.tasks,
                    )
                    cells.append(f"{100 * result[False].accuracy:.1f} / {100 * result[True].accuracy:.1f}")
                print(f"| {classes} x {shots} | {steps} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
