"""Experiment: the batched meta-iteration's inner loop replayed as one CUDA graph, against eager.

On a GPU the eager meta-iteration is bound by the host: every inner step launches a few hundred
small kernels, one after another from Python (omniglot-5w1s: ~42-48 ms a meta-iteration on an
H100/H200, about what this repository's 2-core CPU takes). A CUDA graph records the whole inner
loop (forward, backward and the inner Adam of every step) once and launches it as one unit.

The graph computes what `training.reptile.meta_step` computes (Reptile, carried Adam state); the
script first checks that on the same tasks (float64: <= 1e-9; float32: close), then times both,
interleaved in rounds. Without a GPU (`--device cpu`) it runs the same loop body uncaptured, which
checks everything but the capture itself.

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
from training.reptile import InnerAdam, MetaState, meta_step  # noqa: E402
from training.train import model_spec  # noqa: E402


class GraphedMetaStep:
    """Static input buffers, the inner loop recorded once, the meta update done eagerly (a few
    dozen kernels). The Adam step count lives on the device so that the graph never changes."""

    def __init__(self, spec, adam: InnerAdam, state: MetaState, images, labels, order, capture: bool):
        self.spec, self.adam, self.iters = spec, adam, len(order)
        groups = images.shape[0]
        self.images, self.labels = images.clone(), labels.clone()
        self.order = torch.as_tensor(order, device=images.device)
        self.theta = [p.detach().clone() for p in state.params]
        self.v_in = [v.clone() for v in state.adam_v]
        self.t = torch.tensor(float(state.adam_t), dtype=torch.float64, device=images.device)
        self.task_index = torch.arange(groups, device=images.device)[:, None]
        self.graph = None
        if capture:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up outside the capture (cuDNN, autograd, the allocator)
                for _ in range(2):
                    self._body()
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.out = self._body()

    def _body(self):
        groups = self.images.shape[0]
        params = [p.unsqueeze(0).repeat(groups, *([1] * p.dim())) for p in self.theta]
        v = [x.unsqueeze(0).repeat(groups, *([1] * x.dim())) for x in self.v_in]
        steps = self.t + torch.arange(1, self.iters + 1, dtype=torch.float64, device=self.t.device)
        coefficients = (-self.adam.lr * torch.sqrt(1.0 - self.adam.beta2**steps)).to(params[0].dtype)
        losses = []
        for k in range(self.iters):
            batch = self.order[k]
            with torch.enable_grad():
                leaves = [p.requires_grad_() for p in params]
                per_task = task_losses(self.spec, leaves, self.images[self.task_index, batch],
                                       self.labels[self.task_index, batch])
                grads = torch.autograd.grad(per_task.sum(), leaves)
            losses.append(per_task.detach())
            with torch.no_grad():
                params = [p.detach() for p in leaves]
                # InnerAdam.step, with its step-size factor read from the device
                torch._foreach_mul_(v, self.adam.beta2)
                torch._foreach_addcmul_(v, grads, grads, value=1.0 - self.adam.beta2)
                denom = torch._foreach_sqrt(v)
                torch._foreach_add_(denom, self.adam.eps)
                update = torch._foreach_div(grads, denom)
                torch._foreach_mul_(update, coefficients[k])
                torch._foreach_add_(params, update)
        return params, v, torch.stack(losses)

    def __call__(self, state: MetaState, images, labels, order, meta_step_size: float):
        with torch.no_grad():
            self.images.copy_(images)
            self.labels.copy_(labels)
            self.order.copy_(torch.as_tensor(order), non_blocking=False)
            for dst, src in zip(self.theta + self.v_in, state.params + state.adam_v):
                dst.copy_(src)
            self.t.fill_(state.adam_t)
            if self.graph is not None:
                self.graph.replay()
                final, v, losses = self.out
            else:
                final, v, losses = self._body()
            groups = images.shape[0]
            state.params = [th + (meta_step_size / groups) * (p - th).sum(0) for th, p in zip(self.theta, final)]
            state.adam_v = [x.sum(0) / groups for x in v]
            state.adam_t += self.iters
        return losses


def largest_difference(a: MetaState, b: MetaState) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a.params + a.adam_v, b.params + b.adam_v))


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
    for dtype, tolerance in ((torch.float64, 1e-9), (torch.float32, 1e-4)):
        eager, graphed = fresh_state(dtype), fresh_state(dtype)
        images, labels, order = batches[0]
        step = GraphedMetaStep(spec, adam, graphed, images.to(dtype), labels, order, capture)
        for images, labels, order in batches[:3]:
            meta_step(spec, adam, eager, images.to(dtype), labels, order, config.meta_step)
            step(graphed, images.to(dtype), labels, order, config.meta_step)
        difference = largest_difference(eager, graphed)
        print(f"{dtype}: graphed vs eager meta_step after 3 meta-iterations: largest difference {difference:.2e} "
              f"({'ok' if difference <= tolerance else 'FAILED'}, tolerance {tolerance:g})")
        if not difference <= tolerance:
            sys.exit(1)

    images, labels, order = batches[0]
    graphed_step = GraphedMetaStep(spec, adam, fresh_state(torch.float32), images, labels, order, capture)
    variants = {"eager": lambda *a: meta_step(spec, adam, *a), "graphed": graphed_step}
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
