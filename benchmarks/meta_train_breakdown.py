"""Where an inner step's time goes, batched (G tasks through grouped kernels) and per task (G = 1):
the model's forward + backward with its layers cut down (no BatchNorm, no ReLU, convolutions
only), and each convolution's kernels against the machine's matrix-multiply rate for the same
shapes. All variants are interleaved in one process (machine noise hits them alike).

The cut-down variants are not the algorithm; they bound what faster elementwise kernels could buy:
if a variant removes X ms a step batched and Y ms per task, the meta-iteration ratio printed by
benchmarks/meta_train_throughput.py could at best become (per_task - tasks * steps * Y) / (batched - steps * X).

  python -m benchmarks.meta_train_breakdown [--tasks 5] [--batch 10] [--rounds 5]
"""

import argparse
import ctypes
import statistics
import time

import torch
import torch.nn.functional as F

import training.model as model
from training.model import BN_EPS, ModelSpec, init_params, task_losses
from training.reptile import grouped


def conv(spec, h, weight, scale, shift, groups=1, batches=1):
    """A conv_block cut down to its convolution."""
    return F.conv2d(h, weight, stride=2, padding=1, groups=groups)


LAYERS = {
    "the model": model.conv_block,
    # the training step has one batch per group (batches=1)
    "no ReLU": lambda spec, h, w, sc, sh, groups=1, batches=1: F.batch_norm(
        conv(spec, h, w, sc, sh, groups), None, None, sc, sh, training=True, eps=BN_EPS
    ),
    "no BatchNorm": lambda spec, h, w, sc, sh, groups=1, batches=1: F.relu(conv(spec, h, w, sc, sh, groups)),
    "convolutions only": conv,
}


def timed(fn, repeats: int) -> float:
    """Milliseconds per call of fn, after 3 warm-up calls."""
    for _ in range(3):
        fn()
    began = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - began) / repeats * 1e3


def model_breakdown(spec, groups, batch, rounds):
    """Median ms of one forward + backward step of `groups` tasks for each LAYERS variant."""
    params = grouped(init_params(spec, torch.Generator().manual_seed(0)), groups)
    images = torch.rand(groups, batch, 1, spec.image_size, spec.image_size)
    labels = torch.randint(0, spec.ways, (groups, batch))

    def step():
        leaves = [p.detach().requires_grad_() for p in params]
        loss = task_losses(spec, leaves, images, labels).sum()
        torch.autograd.grad(loss, leaves, allow_unused=True)

    times = {name: [] for name in LAYERS}
    try:
        for _ in range(rounds):
            for name, layer in LAYERS.items():
                model.conv_block = layer
                times[name].append(timed(step, 30))
    finally:
        model.conv_block = LAYERS["the model"]
    return {name: statistics.median(ts) for name, ts in times.items()}


def layer_kernels(x, w, gy, groups, a, b) -> dict:
    """One layer's convolution kernels (gy: the output's gradient) and a bmm of a, b with the same FLOPs."""

    def backward(mask):
        return lambda: torch.ops.aten.convolution_backward(
            gy, x, w, None, [2, 2], [1, 1], [1, 1], False, [0, 0], groups, mask
        )

    return {
        "forward": lambda: F.conv2d(x, w, stride=2, padding=1, groups=groups),
        "input grad": backward([True, False, False]),
        "weight grad": backward([False, True, False]),
        "bmm, same FLOPs": lambda: torch.bmm(a, b),
    }


def conv_kernels(spec, groups, batch, rounds):
    """Per layer: forward, input gradient, weight gradient (ms) and the same FLOPs as one bmm (ms)."""
    rows, side, channels = [], spec.image_size, spec.channels
    for layer in range(spec.layers):
        x = torch.randn(batch, groups * channels, side, side)
        w = torch.randn(groups * spec.filters, channels, 3, 3)
        y = F.conv2d(x, w, stride=2, padding=1, groups=groups)
        gy = torch.randn_like(y)
        out = y.shape[-1] * y.shape[-2]
        a, b = torch.randn(groups, spec.filters, channels * 9), torch.randn(groups, channels * 9, batch * out)
        kernels = layer_kernels(x, w, gy, groups, a, b)
        times = {name: statistics.median(timed(fn, 100) for _ in range(rounds)) for name, fn in kernels.items()}
        flops = 2 * groups * spec.filters * channels * 9 * batch * out
        rows.append((layer, tuple(x.shape), flops, times, layer > 0))
        side, channels = y.shape[-1], spec.filters
    return rows


def pin_allocator() -> None:
    """Keep freed activations in the heap. A short process is otherwise measured in glibc's start-up
    state, where blocks over its (dynamic) mmap threshold go back to the OS on free, so each step
    page-faults its activations afresh (11 instead of 8 ms a batched step here). Training and
    meta_train_throughput.py raise the threshold early by freeing large arrays: setting
    MALLOC_MMAP_THRESHOLD_ made no difference to them (docs/results.md)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 32 << 20)
    libc.mallopt(m_trim_threshold, 1 << 30)


def main() -> None:
    """Print both Markdown tables: the model's variants, then each convolution's kernels."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=5, help="tasks batched together (the preset's meta-batch)")
    parser.add_argument("--batch", type=int, default=10, help="images per task and step (the inner batch)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    pin_allocator()
    spec = ModelSpec()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.tasks} tasks x {args.batch} images "
        "a step; medians in ms\n"
    )
    print("| forward + backward of | batched | per task | per task x tasks |\n|---|---|---|---|")
    batched = model_breakdown(spec, args.tasks, args.batch, args.rounds)
    single = model_breakdown(spec, 1, args.batch, args.rounds)
    for name in LAYERS:
        print(f"| {name} | {batched[name]:.2f} | {single[name]:.2f} | {args.tasks * single[name]:.2f} |")
    print("\n| layer | input | kernel | ms | GFLOP/s |\n|---|---|---|---|---|")
    for layer, shape, flops, times, needs_input_grad in conv_kernels(spec, args.tasks, args.batch, args.rounds):
        for kernel, ms in times.items():
            if kernel == "input grad" and not needs_input_grad:
                continue  # the images need no gradient
            print(f"| {layer + 1} | {list(shape)} | {kernel} | {ms:.3f} | {flops / ms / 1e6:.0f} |")


if __name__ == "__main__":
    main()
