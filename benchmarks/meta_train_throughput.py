"""Batched meta-iteration vs the plain per-task loop, side by side in one process.

Both run the same algorithm (tests/test_reptile.py) on the same tasks, from the same state,
interleaved in rounds so machine noise hits both alike. Prints ms per meta-iteration, the
ratio, and the achieved convolution GFLOP/s.

  python -m benchmarks.meta_train_throughput [--preset omniglot-5w5s-v1] [--iters 30] [--rounds 5] [--device cuda]
"""

import argparse
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from training.arguments import check_device, positive_int
from training.data import load_task_data
from training.model import init_params
from training.presets import PRESETS
from training.reptile import InnerAdam, MetaState, meta_step, per_task_meta_step
from training.tasks import flatten_task, minibatch_order, to_tensor
from training.train import model_spec


def conv_flops_per_example(spec) -> float:
    """Multiply-adds x 2 of the convolutions, forward + backward (x3), per example."""
    flops, side, channels = 0.0, spec.image_size, spec.channels
    for _ in range(spec.layers):
        side = (side + 1) // 2
        flops += 2 * side * side * spec.filters * channels * 9
        channels = spec.filters
    return 3 * flops


def sample_batches(config, data_dir: Path, iters: int, device) -> list:
    """iters meta-batches (images, labels on device; the numpy mini-batch order), sampled up front
    so that the timed loops measure the meta-iteration alone."""
    data = load_task_data(config.dataset, data_dir, config.seed, download=False)
    rng = np.random.default_rng(0)
    n = config.ways * config.train_shots
    batches = []
    for _ in range(iters):
        images, _ = data.meta_train.sample(rng, config.meta_batch, config.ways, config.train_shots)
        images, labels = flatten_task(images)
        order = minibatch_order(rng, config.meta_batch, n, config.inner_batch, config.inner_iters)
        batches.append((to_tensor(images).to(device), torch.from_numpy(labels).to(device), order))
    return batches


def parse_arguments(description: str, preset: str, rounds: int, device: str) -> argparse.Namespace:
    """The flags this benchmark and benchmarks/cuda_graph_meta_step.py share (their defaults differ)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default=preset)
    parser.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared/data/omniglot"
    )
    parser.add_argument("--iters", type=positive_int, default=30, help="meta-iterations per round and variant")
    parser.add_argument("--rounds", type=positive_int, default=rounds)
    parser.add_argument("--device", choices=["cpu", "cuda"], default=device)
    args = parser.parse_args()
    check_device(parser, args.device)
    return args


def time_interleaved(variants: dict, fresh_state, batches: list, meta_step_size: float, rounds: int) -> dict:
    """Seconds per meta-iteration of each variant, step(state, images, labels, order, meta_step_size),
    one list entry per round; the variants take turns within a round, and round 0 warms up."""
    # a GPU runs asynchronously: wait for its queue before reading the clock
    synchronize = torch.cuda.synchronize if batches[0][0].is_cuda else (lambda: None)
    times = {name: [] for name in variants}
    for round_ in range(rounds + 1):
        for name, step in variants.items():
            state = fresh_state()
            synchronize()
            began = time.perf_counter()
            for images, labels, order in batches:
                step(state, images, labels, order, meta_step_size)
            synchronize()
            if round_:
                times[name].append((time.perf_counter() - began) / len(batches))
    return times


def main() -> None:
    """Time both variants and print ms per meta-iteration, GFLOP/s and the speed-up."""
    args = parse_arguments(__doc__, preset="omniglot-5w5s-v1", rounds=5, device="cpu")
    device = torch.device(args.device)
    config = PRESETS[args.preset]
    spec = model_spec(config)
    batches = sample_batches(config, args.data_dir, args.iters, device)
    adam = InnerAdam(config.lr)
    start = MetaState.fresh([p.to(device) for p in init_params(spec, torch.Generator().manual_seed(0))])
    variants = {"batched": partial(meta_step, spec, adam), "per-task loop": partial(per_task_meta_step, spec, adam)}
    times = time_interleaved(variants, start.copy, batches, config.meta_step, args.rounds)
    examples = config.meta_batch * config.inner_iters * config.inner_batch
    gflop = examples * conv_flops_per_example(spec) / 1e9
    print(
        f"{args.preset}: meta-batch {config.meta_batch}, {config.inner_iters} inner steps of {config.inner_batch} "
        f"examples; {gflop:.2f} GFLOP of convolutions per meta-iteration; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    for name, ts in times.items():
        best, median = min(ts), float(np.median(ts))
        print(
            f"  {name:14s} median {1000 * median:7.1f} ms/iter (best {1000 * best:6.1f}), {gflop / median:5.1f} GFLOP/s"
        )
    ratio = np.median(times["per-task loop"]) / np.median(times["batched"])
    print(f"  speed-up of batched over the per-task loop: {ratio:.2f}x (goal >= 2.5x)")


if __name__ == "__main__":
    main()
