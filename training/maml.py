"""Second-order MAML's inner loop: the meta-gradient differentiates through the inner steps.

A task's inner loop is FOMAML's (training/reptile.py): Adam (or SGD) steps on mini-batches
B_1..B_k of the task, the last one, B_k, being the final batch. With U(theta) the weights after
the first k - 1 steps (and v_{k-1} the Adam state they leave),
  FOMAML's last step:  Adam step with g = dL_Bk/dphi at phi = U(theta)
  MAML's last step:    Adam step with G = d L_Bk(U(theta)) / d theta = J_U(theta)^T g
and the meta-update is the same for both: theta <- theta + eps * mean_i (last step of task i).
Where J_U = I (second-order terms dropped) MAML is FOMAML, step for step
(tests/test_maml.py); the final batch's step is the outer optimizer of both, as in the
reference code's FOMAML, so one meta step size means the same for the two.

The inner steps are the run's inner optimizer, the same as Reptile's and FOMAML's, so that the
three algorithms differ only in their meta-update: Adam (beta1 = 0, the carried state) by default,
or plain SGD (--inner-optimizer sgd, InnerSGD), Finn et al.'s inner loop, whose last step makes
the meta-update theta <- theta - eps * lr * mean_i G_i, a plain SGD outer step of size eps * lr.
Adam is differentiable wherever v > 0, and G includes the path through v. Two properties to know
when reading Adam's results:
a fresh state (v = 0, t = 0: --adam-state reset, or the first meta-iteration) makes the first
step lr * g / (|g| + eps') ~ lr * sign(g), whose derivative is ~0, so nearly nothing of the
second-order term passes through that step; and where v = 0 exactly (a gradient exactly 0 so far,
a dead unit) the derivative through sqrt(v) is taken as 0 (InnerAdam.stepped).

Cost: every one of the k - 1 adaptation steps keeps its graph (create_graph=True) and the
meta-gradient back-propagates through all of them, so time and memory grow with k on top of
FOMAML's (benchmarks measure it). CUDA graphs do not replay it: MAML runs eagerly on a GPU.
"""

import torch

from .model import task_losses


def adapted_and_meta_gradients(spec, adam, params, v, t: int, images, labels, order, second_order: bool = True):
    """From grouped params [G, ...] (each task's copy of theta) and optimizer state v, t: steps of
    `adam` (InnerAdam or InnerSGD) on the batches order[:-1], then the final batch order[-1] at the
    adapted weights.
    -> (adapted weights, v after the adaptation steps, meta-gradients d(final loss)/d params [G, ...],
    losses per step [iters, G]). second_order=False drops the terms through the inner steps (FOMAML's g)."""
    task_index = torch.arange(images.shape[0], device=images.device)[:, None]
    order = torch.as_tensor(order, device=images.device)
    theta = [p.detach().requires_grad_() for p in params]
    fast, fast_v, losses = theta, list(v), []
    for k, batch in enumerate(order[:-1]):
        per_task = task_losses(spec, fast, images[task_index, batch], labels[task_index, batch])
        grads = torch.autograd.grad(per_task.sum(), fast, create_graph=second_order)
        losses.append(per_task.detach())
        fast, fast_v = adam.stepped(fast, list(grads), fast_v, t + k + 1)
    final_loss = task_losses(spec, fast, images[task_index, order[-1]], labels[task_index, order[-1]])
    losses.append(final_loss.detach())
    # each task's loss depends only on its own slice of the grouped weights: one backward gives all
    meta_grads = torch.autograd.grad(final_loss.sum(), theta)
    return [p.detach() for p in fast], [x.detach() for x in fast_v], list(meta_grads), torch.stack(losses)


def maml_inner_loop(spec, adam, params, v, t: int, images, labels, order, second_order: bool = True):
    """reptile.inner_loop's contract for MAML: v updated in place; returns (params after the last
    step, params before it, losses per step [iters, G]); the last step is the optimizer's step with
    the meta-gradient."""
    adapted, adapted_v, meta_grads, losses = adapted_and_meta_gradients(
        spec, adam, params, v, t, images, labels, order, second_order
    )
    with torch.no_grad():
        for target, value in zip(v, adapted_v, strict=True):
            target.copy_(value)
        final = [p.clone() for p in adapted]
        adam.step(final, meta_grads, v, t + len(order))
    return final, adapted, losses
