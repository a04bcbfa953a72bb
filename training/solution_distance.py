"""`solution-distance`: how far a start is from each held-out task's solution, the paper's "close to all tasks'
solution manifolds" claim made a number.

For each of `tasks` held-out tasks (`ways` classes, `shots` drawings each; by default all of a class's drawings,
so the solution is of the task's whole data, not of a 1-shot support set), the start's weights are fine-tuned
until the task's loss is below `loss_threshold` (cross-entropy per example) or `max_steps` steps are done, and
the Euclidean distance |theta_task - theta_start| is reported over all parameters and over the body alone, as
mean and standard error over tasks, with the steps taken and the loss reached. A task stops moving at the
first step its loss is below the threshold: cross-entropy keeps falling as the weights grow, so training on
would add distance that no solution needs.

Fine-tuning is full-batch (all of the task's examples in one batch, BatchNorm with their statistics, so the
loss is exact and the stopping test is not noise), the same optimizer for every start:

- `adam`: the inner loop's Adam (training/reptile.py InnerAdam, beta1 = 0) started fresh (v = 0, t = 0): a
  baseline or a random initialization has no Adam state to carry. Adam's steps are about `lr` per
  coordinate whatever the gradient's size, so the distance grows with the steps taken.
- `flow`: steps of length `lr` (in parameter space, over all tensors) down each task's gradient:
  the gradient flow traced by arc length, the same resolution for every start whatever its
  gradient's size. The flow from a start ends near the closest part of the task's solution set, so
  its distance is the Euclidean one the paper's picture is about; it converges as `lr` shrinks
  (docs/claims.md, section 6, has the check).
"""

import numpy as np
import torch

from .evaluate import CPU_TASKS_AT_ONCE
from .model import ModelSpec, task_losses
from .reptile import InnerAdam, grouped
from .start_points import HEAD_TENSORS, flat, mean_sem, publish, shown
from .tasks import flatten_task, to_tensor


def fine_tune(
    spec: ModelSpec, params: list, images, labels, *, optimizer: str, lr: float, loss_threshold: float, max_steps: int
):
    """Grouped params [G, ...] fine-tuned (a copy) by `optimizer` (adam or flow) on each task's full batch until
    its loss per example is below loss_threshold or max_steps are done -> (params, steps taken [G], final loss
    per example [G])."""
    if optimizer not in ("adam", "flow"):
        raise ValueError(f"unknown fine-tuning optimizer {optimizer!r}")
    groups, examples = labels.shape
    adam = InnerAdam(lr=lr)
    params = [p.detach().clone() for p in params]
    v = [torch.zeros_like(p) for p in params]
    steps = torch.full((groups,), max_steps)
    done = torch.zeros(groups, dtype=torch.bool, device=labels.device)
    for step in range(max_steps + 1):
        leaves = [p.requires_grad_() for p in params]
        losses = task_losses(spec, leaves, images, labels)
        per_example = losses.detach() / examples
        newly = ~done & (per_example < loss_threshold)
        steps[newly.cpu()] = step
        done |= newly
        if bool(done.all()) or step == max_steps:
            break
        grads = torch.autograd.grad(losses.sum(), leaves)
        with torch.no_grad():
            params = [p.detach() for p in leaves]
            kept = [p[done].clone() for p in params]
            if optimizer == "adam":
                adam.step(params, list(grads), v, step + 1)
            else:
                norm = flat(list(grads), groups).norm(dim=1).to(grads[0].dtype)  # per task, over all tensors
                scale = -lr / norm.clamp_min(torch.finfo(norm.dtype).tiny)
                for p, g in zip(params, grads, strict=True):
                    p.add_(g * scale.view(-1, *[1] * (g.dim() - 1)))
            for p, frozen in zip(params, kept, strict=True):
                p[done] = frozen  # a task below the threshold has reached its solution: it stays there
    return [p.detach() for p in leaves], steps, per_example


def measure(start, images: np.ndarray, settings: dict, device: str = "cpu") -> dict:
    """One start's report row: distances (all parameters, body), steps, final loss; mean ± sem and per task."""
    tasks = images.shape[0]
    at_once = tasks if device == "cuda" else CPU_TASKS_AT_ONCE
    per_task = {"distance_all": [], "distance_body": [], "steps": [], "final_loss": []}
    start_norm = float(flat([p[None] for p in start.params], 1).norm())
    body_norm = float(flat([p[None] for p in start.params[:-HEAD_TENSORS]], 1).norm())
    for first in range(0, tasks, at_once):
        examples, labels = flatten_task(images[first : first + at_once])
        size = examples.shape[0]
        theta = grouped([p.to(device) for p in start.params], size)
        tuned, steps, loss = fine_tune(
            start.spec,
            theta,
            to_tensor(examples).to(device),
            torch.from_numpy(labels).to(device),
            optimizer=settings["optimizer"],
            lr=settings["lr"],
            loss_threshold=settings["loss_threshold"],
            max_steps=settings["max_steps"],
        )
        moved = [a - b for a, b in zip(tuned, theta, strict=True)]
        per_task["distance_all"] += flat(moved, size).norm(dim=1).tolist()
        per_task["distance_body"] += flat(moved[:-HEAD_TENSORS], size).norm(dim=1).tolist()
        per_task["steps"] += steps.tolist()
        per_task["final_loss"] += loss.cpu().tolist()
    return {
        **start.describe(),
        "distance": {"all": mean_sem(per_task["distance_all"]), "body": mean_sem(per_task["distance_body"])},
        "start_norm": {"all": start_norm, "body": body_norm},
        # BatchNorm makes each conv layer's output blind to its weights' scale: distance relative to the start's size
        "relative_distance": {
            "all": mean_sem(np.array(per_task["distance_all"]) / start_norm),
            "body": mean_sem(np.array(per_task["distance_body"]) / body_norm),
        },
        "steps": mean_sem(per_task["steps"]),
        "final_loss": {**mean_sem(per_task["final_loss"]), "max": max(per_task["final_loss"])},
        "reached_threshold": sum(loss < settings["loss_threshold"] for loss in per_task["final_loss"]),
        "tasks": tasks,
        "per_task": per_task,
    }


def table_columns() -> list:
    """The printed table's columns."""
    return [
        ("start", lambda r: r["start"]),
        ("algorithm", lambda r: r["algorithm"]),
        ("distance (all)", lambda r: shown(r["distance"]["all"])),
        ("distance (body)", lambda r: shown(r["distance"]["body"])),
        ("|theta_start| (all)", lambda r: f"{r['start_norm']['all']:.4g}"),
        ("relative (all)", lambda r: shown(r["relative_distance"]["all"])),
        ("steps", lambda r: shown(r["steps"])),
        ("final loss", lambda r: shown(r["final_loss"])),
        ("reached", lambda r: f"{r['reached_threshold']}/{r['tasks']}"),
    ]


def figure_panels() -> list:
    """The figure's panels: the distances and the steps taken."""
    return [
        ("|theta_task - theta_start|, all parameters", lambda r: r["distance"]["all"]),
        ("|theta_task - theta_start|, body", lambda r: r["distance"]["body"]),
        ("|theta_task - theta_start| / |theta_start|, all", lambda r: r["relative_distance"]["all"]),
        ("fine-tuning steps to the threshold", lambda r: r["steps"]),
    ]


def run(sampler, split: dict, starts: list, settings: dict, *, device="cpu", out=None, plot=None, command="") -> dict:
    """Fine-tune every start on the same tasks (settings: tasks, ways, shots, lr, loss_threshold, max_steps,
    seed); print, write, draw."""
    from .run_folder import machine

    rng = np.random.default_rng(settings["seed"])
    images, _ = sampler.sample(rng, settings["tasks"], settings["ways"], settings["shots"])
    rows = [measure(start, images, settings, device) for start in starts]
    contents = {"command": command, "split": split, "settings": settings, "device": device, **machine(), "starts": rows}
    title = (
        f"Distance to each task's fine-tuned weights: {settings['tasks']} held-out {settings['ways']}-way tasks, "
        f"{settings['shots']} examples a class, {settings['optimizer']} at lr {settings['lr']:g}, "
        f"loss < {settings['loss_threshold']} (mean ± standard error)"
    )
    publish(contents, table_columns(), figure_panels(), out=out, plot=plot, title=title)
    return contents
