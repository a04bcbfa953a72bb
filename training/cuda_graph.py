"""meta_step with its inner loop replayed as one CUDA graph.

On a GPU the eager meta-iteration is bound by the host: each inner step launches a few hundred
small kernels from Python, so an H100 or H200 took 42-48 ms per omniglot-5w1s-v1 meta-iteration, no
faster than this repository's 2-core CPU. Recorded once and replayed, the same inner loop took
5.5 ms (`benchmarks/cuda_graph_meta_step.py`, docs/results.md). The graph holds the forward,
backward and inner Adam of every inner step; the meta update (and the all-reduce across ranks)
stays eager, shared with meta_step. tests/test_cuda_graph.py checks it equals meta_step (float64).
"""

import torch

from .model import ModelSpec
from .reptile import InnerAdam, MetaState, apply_meta_update, grouped, inner_loop


class GraphedMetaStep:
    """Call it as meta_step (same arguments after spec and adam, which it holds). Recorded on the
    first call, and again whenever the tasks' shapes change. With capture=False the same loop body
    runs eagerly each call (on a CPU, where there is nothing to capture: for tests)."""

    def __init__(
        self,
        spec: ModelSpec,
        adam: InnerAdam,
        algorithm: str = "reptile",
        carry_state: bool = True,
        capture: bool = True,
    ):
        if algorithm not in ("reptile", "fomaml"):
            raise ValueError(f"unknown algorithm {algorithm!r} for a CUDA graph: it replays reptile and fomaml")
        self.spec, self.adam, self.algorithm, self.carry_state, self.capture = (
            spec,
            adam,
            algorithm,
            carry_state,
            capture,
        )
        self.shapes, self.graph, self.outputs = None, None, None

    def _record(self, state: MetaState, images, labels, order) -> None:
        # static inputs: every call copies its values into these, so the graph reads the same memory
        self.images, self.labels = images.clone(), labels.clone()
        self.order = torch.as_tensor(order, device=images.device).clone()
        self.theta = [p.detach().clone() for p in state.params]
        self.v_in = [v.clone() for v in state.adam_v]
        self.t = torch.zeros((), dtype=torch.float64, device=images.device)
        self.shapes = self._shapes(state, images, labels, order)
        self.graph = None
        if self.capture:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm up outside the capture (cuDNN, autograd, the allocator)
                for _ in range(2):
                    self._inner_loops()
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.outputs = self._inner_loops()

    @staticmethod
    def _shapes(state, images, labels, order) -> tuple:
        return (
            images.shape,
            images.dtype,
            images.device,
            labels.shape,
            tuple(order.shape),
            tuple((p.shape, p.dtype) for p in state.params),
        )

    def _inner_loops(self):
        groups = self.images.shape[0]
        params = grouped(self.theta, groups)
        v = grouped(self.v_in, groups) if self.carry_state else [torch.zeros_like(p) for p in params]
        with torch.enable_grad():
            final, before_last, losses = inner_loop(
                self.spec, self.adam, params, v, self.t, self.images, self.labels, self.order
            )
        return final, before_last, v, losses

    def __call__(
        self, state: MetaState, images, labels, order, meta_step_size: float, total_tasks: int | None = None
    ) -> torch.Tensor:
        if self.shapes != self._shapes(state, images, labels, order):
            self._record(state, images, labels, order)
        with torch.no_grad():
            self.images.copy_(images)
            self.labels.copy_(labels)
            self.order.copy_(torch.as_tensor(order))
            for static, value in zip(self.theta + self.v_in, state.params + state.adam_v, strict=False):
                static.copy_(value)
            self.t.fill_(state.adam_t if self.carry_state else 0)
            if self.graph is not None:
                self.graph.replay()
                final, before_last, v, losses = self.outputs
            else:
                final, before_last, v, losses = self._inner_loops()
        # the graph's outputs are overwritten by the next replay: the update makes new tensors
        apply_meta_update(
            state,
            self.theta,
            final,
            before_last,
            v,
            meta_step_size,
            self.algorithm,
            self.carry_state,
            total_tasks or images.shape[0],
            inner_steps=len(order),
        )
        return losses.clone()
