"""The batched meta-iteration replayed as a CUDA graph (training/cuda_graph.py) against eager
meta_step, side by side in one process.

On a GPU the eager meta-iteration is bound by the host: every inner step launches a few hundred
small kernels, one after another from Python. The script first checks that both give the same
result on the same tasks (float64: <= 1e-9; float32 is printed: on a GPU cuDNN's TF32 convolutions
make the two differ by rounding), then times both, interleaved in rounds. Without a GPU
(`--device cpu`) the loop body runs uncaptured, which checks everything but the capture itself.

  python3 benchmarks/cuda_graph_meta_step.py --device cuda [--preset omniglot-5w1s] [--iters 30] [--rounds 3]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from meta_train_throughput import sample_batches  # noqa: E402
from training.cli import check_device  # noqa: E402
from training.model import init_params, task_losses  # noqa: E402
from training.presets import PRESETS  # noqa: E402
from training.cuda_graph import GraphedMetaStep  # noqa: E402
from training.reptile import InnerAdam, MetaState, meta_step  # noqa: E402
from training.train import model_spec  # noqa: E402


def largest_relative_difference(a: MetaState, b: MetaState) -> float:
    return max(float((x - y).abs().max() / x.abs().max().clamp_min(1e-30))
               for x, y in zip(a.params + a.adam_v, b.params + b.adam_v))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="omniglot-5w1s")
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared/data/omniglot")
    parser.add_argument("--iters", type=int, default=30, help="meta-iterations per round and variant")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    args = parser.parse_args()
    check_device(parser, args.device)
    device = torch.device(args.device)
    capture = device.type == "cuda"
    synchronize = torch.cuda.synchronize if capture else (lambda: None)
    config = PRESETS[args.preset]
    spec = model_spec(config)
    adam = InnerAdam(config.lr)
    batches = sample_batches(config, args.data_dir, args.iters, device)

    def fresh_state(dtype):
        return MetaState.fresh([p.to(device, dtype) for p in init_params(spec, torch.Generator().manual_seed(0))])

    # faithfulness: 3 meta-iterations each way from the same state, on the same tasks
    for dtype in (torch.float64, torch.float32):
        eager, graphed = fresh_state(dtype), fresh_state(dtype)
        step = GraphedMetaStep(spec, adam, capture=capture)
        for images, labels, order in batches[:3]:
            meta_step(spec, adam, eager, images.to(dtype), labels, order, config.meta_step)
            step(graphed, images.to(dtype), labels, order, config.meta_step)
        difference = largest_relative_difference(eager, graphed)
        verdict = ("ok" if difference <= 1e-9 else "FAILED") if dtype == torch.float64 else "rounding, not checked"
        print(f"{dtype}: graphed vs eager meta_step after 3 meta-iterations: largest difference "
              f"{difference:.2e} of a tensor's largest value ({verdict})")
        if verdict == "FAILED":
            sys.exit(1)

    variants = {"eager": lambda *a: meta_step(spec, adam, *a), "graphed": GraphedMetaStep(spec, adam, capture=capture)}
    times = {name: [] for name in variants}
    for round_ in range(args.rounds + 1):  # round 0 warms up
        for name, step in variants.items():
            state = fresh_state(torch.float32)
            synchronize()
            began = time.perf_counter()
            for images, labels, order in batches:
                step(state, images, labels, order, config.meta_step)
            synchronize()
            if round_:
                times[name].append((time.perf_counter() - began) / args.iters)
    print(f"{args.preset}: meta-batch {config.meta_batch}, {config.inner_iters} inner steps of {config.inner_batch} "
          f"examples; torch {torch.__version__}, {torch.cuda.get_device_name() if capture else 'CPU, uncaptured'}")
    for name, ts in times.items():
        print(f"  {name:8s} median {1000 * np.median(ts):7.2f} ms/iter (best {1000 * min(ts):6.2f})")
    print(f"  speed-up of the graph over eager: {np.median(times['eager']) / np.median(times['graphed']):.2f}x")


if __name__ == "__main__":
    main()
