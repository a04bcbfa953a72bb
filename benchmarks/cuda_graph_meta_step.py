"""The batched meta-iteration replayed as a CUDA graph (training/cuda_graph.py) against eager
meta_step, side by side in one process.

On a GPU the eager meta-iteration is bound by the host: every inner step launches a few hundred
small kernels, one after another from Python. The script first checks that both give the same
result on the same tasks (float64: <= 1e-9; float32 is printed: on a GPU cuDNN's TF32 convolutions
make the two differ by rounding), then times both, interleaved in rounds. Without a GPU
(`--device cpu`) the loop body runs uncaptured, which checks everything but the capture itself.

  python -m benchmarks.cuda_graph_meta_step --device cuda [--preset omniglot-5w1s-v1] [--iters 30] [--rounds 3]
"""

from functools import partial

import numpy as np
import torch

from benchmarks.meta_train_throughput import parse_arguments, sample_batches, time_interleaved
from training.cuda_graph import GraphedMetaStep
from training.model import init_params
from training.presets import PRESETS
from training.reptile import InnerAdam, MetaState, meta_step
from training.train import model_spec


def largest_relative_difference(a: MetaState, b: MetaState) -> float:
    """The largest |a - b| over the tensors of two states, each relative to the tensor's largest |a|."""
    return max(
        float((x - y).abs().max() / x.abs().max().clamp_min(1e-30))
        for x, y in zip(a.params + a.adam_v, b.params + b.adam_v, strict=False)
    )


def main() -> None:
    """Check graphed against eager on the same tasks, then time both."""
    args = parse_arguments(__doc__, preset="omniglot-5w1s-v1", rounds=3, device="cuda")
    device = torch.device(args.device)
    capture = device.type == "cuda"
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
        print(
            f"{dtype}: graphed vs eager meta_step after 3 meta-iterations: largest difference "
            f"{difference:.2e} of a tensor's largest value ({verdict})"
        )
        if verdict == "FAILED":
            raise SystemExit(1)

    variants = {"eager": partial(meta_step, spec, adam), "graphed": GraphedMetaStep(spec, adam, capture=capture)}
    times = time_interleaved(variants, lambda: fresh_state(torch.float32), batches, config.meta_step, args.rounds)
    print(
        f"{args.preset}: meta-batch {config.meta_batch}, {config.inner_iters} inner steps of {config.inner_batch} "
        f"examples; torch {torch.__version__}, {torch.cuda.get_device_name() if capture else 'CPU, uncaptured'}"
    )
    for name, ts in times.items():
        print(f"  {name:8s} median {1000 * np.median(ts):7.2f} ms/iter (best {1000 * min(ts):6.2f})")
    print(f"  speed-up of the graph over eager: {np.median(times['eager']) / np.median(times['graphed']):.2f}x")


if __name__ == "__main__":
    main()
