"""How far is the batched meta-iteration's Adam-state rule from the reference's?

The reference code runs a meta-batch's tasks one after another, so the inner Adam's second
moment v passes from task to task (and its step count grows by tasks x inner_iters). The batched
meta-iteration starts every task from the same carried (v, t) and averages the tasks' final v
(t grows by inner_iters). From the same state and the same tasks, this script runs both rules
for one meta-iteration at a time and prints how much the meta-update and v differ, relative to
their size. Each iteration starts both rules from the batched run's state (no drift).
Both rules move the weights by the meta step size times a direction, so the directions are
compared (step size 1) and the run then advances by the schedule's step size at the checkpoint's
iteration: this also works on a finished run, whose schedule has reached 0.

  .venv/bin/python benchmarks/adam_state_combination.py --checkpoint runs/omniglot-5w5s/checkpoint.pt
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from training.cli import load_trained_flag, positive_int
from training.data import load_task_data
from training.reptile import InnerAdam, meta_step, per_task_meta_step
from training.tasks import flatten_task, minibatch_order, to_tensor


def _relative(a: list, b: list) -> float:
    num = sum(float((x - y).pow(2).sum()) for x, y in zip(a, b, strict=False))
    den = sum(float(y.pow(2).sum()) for y in b)
    return (num / den) ** 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared/data/omniglot"
    )
    parser.add_argument("--iters", type=positive_int, default=20)
    args = parser.parse_args()
    payload, config, spec, state = load_trained_flag(parser, args.checkpoint)
    data = load_task_data(config.dataset, args.data_dir, config.seed, download=False)
    rng = np.random.default_rng(12345)
    adam = InnerAdam(config.lr)
    n = config.ways * config.train_shots
    # The schedule's step size; the measurements below use 1 (see the docstring).
    step_size = config.meta_step * (1 - payload["iteration"] / config.meta_iters)
    update_gap, v_gap, update_vs_noise = [], [], []
    for _ in range(args.iters):
        images, _ = data.meta_train.sample(rng, config.meta_batch, config.ways, config.train_shots)
        images, labels = flatten_task(images)
        images, labels = to_tensor(images), torch.from_numpy(labels)
        order = minibatch_order(rng, config.meta_batch, n, config.inner_batch, config.inner_iters)
        batched, sequential = state.copy(), state.copy()
        meta_step(spec, adam, batched, images, labels, order, 1.0)
        per_task_meta_step(spec, adam, sequential, images, labels, order, 1.0, sequential_state=True)
        delta_b = [a - b for a, b in zip(batched.params, state.params, strict=False)]
        delta_s = [a - b for a, b in zip(sequential.params, state.params, strict=False)]
        update_gap.append(_relative(delta_b, delta_s))
        v_gap.append(_relative(batched.adam_v, sequential.adam_v))
        # For scale: how different are two meta-updates from different tasks (same rule)?
        other = state.copy()
        other_images, _ = data.meta_train.sample(rng, config.meta_batch, config.ways, config.train_shots)
        other_images, other_labels = flatten_task(other_images)
        meta_step(spec, adam, other, to_tensor(other_images), torch.from_numpy(other_labels), order, 1.0)
        update_vs_noise.append(_relative(delta_b, [a - b for a, b in zip(other.params, state.params, strict=False)]))
        batched.params = [p + step_size * d for p, d in zip(state.params, delta_b, strict=False)]
        state = batched
    print(
        f"checkpoint iteration {payload['iteration']} (meta step size {step_size:.4g}), {args.iters} meta-iterations "
        f"of {config.meta_batch} tasks x {config.inner_iters} inner steps (torch {torch.__version__})"
    )
    print(
        f"  meta-update, batched (mean v) vs reference (sequential v): relative difference "
        f"median {np.median(update_gap):.4f} (max {max(update_gap):.4f})"
    )
    print(
        f"  carried v after the meta-iteration: relative difference median {np.median(v_gap):.4f} (max {max(v_gap):.4f})"
    )
    print(
        f"  for scale, meta-updates from two different meta-batches differ by median {np.median(update_vs_noise):.4f}"
    )


if __name__ == "__main__":
    main()
