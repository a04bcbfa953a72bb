"""Reptile, first-order MAML and MAML meta-iterations, batched over the meta-batch of tasks.

Definition (the reference code's, with one documented choice for the batched optimizer state):
every task of a meta-batch starts from the meta-parameters theta and the carried inner-Adam
state (v, t), runs `inner_iters` Adam steps on its own mini-batches, and ends at theta_i, v_i.
  Reptile:  theta <- theta + eps * (mean_i theta_i - theta)
  FOMAML:   theta <- theta + eps * mean_i (last inner step of task i)
  MAML:     the same, the last step taken with the meta-gradient instead of the last batch's
            gradient (training/maml.py)
  Adam state, when carried: v <- mean_i v_i and t <- t + inner_iters; when reset, every task
  starts from v = 0, t = 0 (a fresh Adam per task). The reference runs the tasks one after
  another, so its v passes from task to task; `per_task_meta_step(..., sequential_state=True)`
  does that, for measuring the difference.
  Plain SGD inner steps (InnerSGD, the reference's --sgd) have no state: v and t are left as
  they are, whatever carry_state says.
FOMAML's and MAML's last mini-batch (the final batch) is the last of the order it is given:
tasks.minibatch_order(..., separate_final=True) makes it one that no earlier step uses.
`meta_step` runs all tasks through one set of grouped kernels; `per_task_meta_step` is the
plain loop over tasks with the same definition (tests/test_reptile.py checks they agree);
on a GPU, training/cuda_graph.py replays meta_step's inner loop as one CUDA graph (not MAML's).
Under torch.distributed each rank runs a slice of the tasks and the sums are all-reduced.
"""

from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.distributed as dist

from .maml import maml_inner_loop
from .model import ModelSpec, task_losses

ALGORITHMS = ("reptile", "fomaml", "maml")


@dataclass
class InnerAdam:
    """TensorFlow-style Adam with beta1 = 0 (as the reference): no first moment.

    v <- beta2 v + (1 - beta2) g^2;  theta <- theta - lr sqrt(1 - beta2^t) g / (sqrt(v) + eps).
    """

    lr: float
    beta2: float = 0.999
    eps: float = 1e-8
    has_state: ClassVar[bool] = True  # v and t: carried across tasks or reset per task

    def step(self, params: list, grads: list, v: list, t) -> None:
        """In place, for step number t (1-based): an int, or a 0-dim tensor on the parameters'
        device (inside a CUDA graph, where the step count must not be a constant of the graph)."""
        torch._foreach_mul_(v, self.beta2)
        torch._foreach_addcmul_(v, grads, grads, value=1.0 - self.beta2)
        denom = torch._foreach_sqrt(v)
        torch._foreach_add_(denom, self.eps)
        if isinstance(t, torch.Tensor):
            update = torch._foreach_div(grads, denom)
            torch._foreach_mul_(update, (-self.lr * torch.sqrt(1.0 - self.beta2**t)).to(params[0].dtype))
            torch._foreach_add_(params, update)
        else:
            torch._foreach_addcdiv_(params, grads, denom, value=-self.lr * (1.0 - self.beta2**t) ** 0.5)

    def stepped(self, params: list, grads: list, v: list, t: int) -> tuple:
        """step out of place and differentiable in params, grads and v (for MAML) -> (params, v).
        sqrt's gradient is taken as 0 where v = 0 (there every gradient so far was exactly 0, and
        autograd would give 0 * inf); the values equal step's."""
        v = [self.beta2 * x + (1.0 - self.beta2) * g * g for x, g in zip(v, grads, strict=True)]
        scale = self.lr * (1.0 - self.beta2**t) ** 0.5
        params = [
            p - scale * g / (x.clamp_min(torch.finfo(x.dtype).tiny).sqrt() + self.eps)
            for p, g, x in zip(params, grads, v, strict=True)
        ]
        return params, v


@dataclass
class InnerSGD:
    """Plain gradient descent, theta <- theta - lr g (the reference's --sgd). InnerAdam's interface:
    v and t are accepted and left untouched, so the meta-iteration runs either optimizer."""

    lr: float
    has_state: ClassVar[bool] = False

    def step(self, params: list, grads: list, v: list, t) -> None:
        """In place."""
        torch._foreach_add_(params, grads, alpha=-self.lr)

    def stepped(self, params: list, grads: list, v: list, t: int) -> tuple:
        """step out of place and differentiable in params and grads (for MAML) -> (params, v)."""
        return [p - self.lr * g for p, g in zip(params, grads, strict=True)], v


INNER_OPTIMIZERS = {"adam": InnerAdam, "sgd": InnerSGD}


def make_inner_optimizer(name: str, lr: float):
    """The inner loop's optimizer by name (Config.inner_optimizer): adam or sgd."""
    if name not in INNER_OPTIMIZERS:
        raise ValueError(f"unknown inner optimizer {name!r}: expected one of {', '.join(INNER_OPTIMIZERS)}")
    return INNER_OPTIMIZERS[name](lr=lr)


@dataclass
class MetaState:
    """What meta-training carries from iteration to iteration (and checkpoints)."""

    params: list  # meta-parameters, no group axis
    adam_v: list = field(default_factory=list)  # carried second moments (zeros when reset)
    adam_t: int = 0  # carried inner step count

    @classmethod
    def fresh(cls, params: list) -> "MetaState":
        return cls(params, [torch.zeros_like(p) for p in params], 0)

    def copy(self) -> "MetaState":
        """An independent copy, so that several runs can start from the same state."""
        return MetaState([p.clone() for p in self.params], [v.clone() for v in self.adam_v], self.adam_t)


def grouped(tensors: list, groups: int) -> list:
    return [t.unsqueeze(0).repeat(groups, *([1] * t.dim())) for t in tensors]


def inner_loop(spec, adam, params, v, t, images, labels, order):
    """Fine-tune grouped params/v in place on batches images[g, order[k, g]]; returns
    (params before the last step, losses per step [iters, G])."""
    task_index = torch.arange(images.shape[0], device=images.device)[:, None]
    # one copy for all steps: on a GPU a copy per step would wait for the queue each time
    order = torch.as_tensor(order, device=images.device)
    losses, before_last = [], None
    for k, batch in enumerate(order):
        leaves = [p.requires_grad_() for p in params]
        per_task = task_losses(spec, leaves, images[task_index, batch], labels[task_index, batch])
        grads = torch.autograd.grad(per_task.sum(), leaves)
        losses.append(per_task.detach())
        with torch.no_grad():
            params = [p.detach() for p in leaves]
            if k == len(order) - 1:
                before_last = [p.clone() for p in params]
            adam.step(params, list(grads), v, t + k + 1)
    return params, before_last, torch.stack(losses)


def inner_loop_of(algorithm: str):
    """The inner loop an algorithm runs: MAML's differentiates through its steps."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}")
    return maml_inner_loop if algorithm == "maml" else inner_loop


def _all_reduce_sum(tensors: list) -> None:
    if dist.is_available() and dist.is_initialized():
        for tensor in tensors:
            dist.all_reduce(tensor)


def meta_step(
    spec: ModelSpec,
    adam: InnerAdam | InnerSGD,
    state: MetaState,
    images,
    labels,
    order,
    meta_step_size: float,
    algorithm: str = "reptile",
    carry_state: bool = True,
    total_tasks: int | None = None,
) -> torch.Tensor:
    """One batched meta-iteration of `algorithm` (reptile, fomaml or maml) over this rank's tasks
    (images [G, n, C, H, W], labels [G, n], order [iters, G, batch]); updates state in place;
    returns the inner losses [iters, G] (the last row: the final batch's, before its step).

    total_tasks: the meta-batch size over all ranks (default: G, a single process)."""
    carry_state = carry_state and adam.has_state
    groups = images.shape[0]
    total_tasks = total_tasks or groups
    theta = [p.detach() for p in state.params]
    params = grouped(theta, groups)
    v = grouped(state.adam_v, groups) if carry_state else [torch.zeros_like(p) for p in params]
    t = state.adam_t if carry_state else 0
    final, before_last, losses = inner_loop_of(algorithm)(spec, adam, params, v, t, images, labels, order)
    apply_meta_update(
        state, theta, final, before_last, v, meta_step_size, algorithm, carry_state, total_tasks, inner_steps=len(order)
    )
    return losses


def apply_meta_update(
    state: MetaState,
    theta: list,
    final: list,
    before_last: list,
    v: list,
    meta_step_size: float,
    algorithm: str,
    carry_state: bool,
    total_tasks: int,
    inner_steps: int,
) -> None:
    """The outer step from the tasks' inner loops (grouped final params, params before the last
    step, final v), all-reduced over ranks; state.adam_t is the count the inner loops started from."""
    with torch.no_grad():
        if algorithm == "reptile":
            sums = [(p - th).sum(0) for p, th in zip(final, theta, strict=False)]
        elif algorithm in ("fomaml", "maml"):
            sums = [(p - b).sum(0) for p, b in zip(final, before_last, strict=False)]
        else:
            raise ValueError(f"unknown algorithm {algorithm!r}")
        v_sums = [x.sum(0) for x in v] if carry_state else []
        _all_reduce_sum(sums + v_sums)
        state.params = [th + (meta_step_size / total_tasks) * s for th, s in zip(theta, sums, strict=False)]
        if carry_state:
            state.adam_v = [s / total_tasks for s in v_sums]
            state.adam_t += inner_steps


def per_task_meta_step(
    spec: ModelSpec,
    adam: InnerAdam | InnerSGD,
    state: MetaState,
    images,
    labels,
    order,
    meta_step_size: float,
    algorithm: str = "reptile",
    carry_state: bool = True,
    sequential_state: bool = False,
) -> torch.Tensor:
    """The plain loop: one task at a time, one model (G = 1) each. With sequential_state the
    Adam state passes from task to task as in the reference code instead of being averaged."""
    carry_state = carry_state and adam.has_state
    theta = [p.detach() for p in state.params]
    deltas, v_out, all_losses = [], [], []
    v_running, t_running = state.adam_v, state.adam_t
    for g in range(images.shape[0]):
        params = grouped(theta, 1)
        if not carry_state:
            v, t = [torch.zeros_like(p) for p in params], 0
        elif sequential_state:
            v, t = grouped(v_running, 1), t_running
        else:
            v, t = grouped(state.adam_v, 1), state.adam_t
        final, before_last, losses = inner_loop_of(algorithm)(
            spec, adam, params, v, t, images[g : g + 1], labels[g : g + 1], order[:, g : g + 1]
        )
        reference = theta if algorithm == "reptile" else [b[0] for b in before_last]
        deltas.append([p[0] - r for p, r in zip(final, reference, strict=False)])
        v_out.append([x[0] for x in v])
        v_running, t_running = v_out[-1], t + len(order)
        all_losses.append(losses)
    with torch.no_grad():
        mean_delta = [torch.stack(ds).mean(0) for ds in zip(*deltas, strict=False)]
        state.params = [th + meta_step_size * d for th, d in zip(theta, mean_delta, strict=False)]
        if carry_state:
            if sequential_state:
                state.adam_v, state.adam_t = v_running, t_running
            else:
                state.adam_v = [torch.stack(vs).mean(0) for vs in zip(*v_out, strict=False)]
                state.adam_t = state.adam_t + len(order)
    return torch.cat(all_losses, dim=1)
