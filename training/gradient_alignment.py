"""`gradient-alignment`: the quantity the paper's Taylor analysis says Reptile increases, measured at a start.

Nichol, Achiam & Schulman (2018), section 5: expanded in the inner step size alpha, the expected Reptile update
has, besides the term that lowers the expected loss, a term of order alpha along d/dphi E[g_i . g_j] (i != j):
it climbs the inner product between the gradients of different mini-batches of the same task, so that a step
on one mini-batch also helps on the others. Here, for each of `tasks` held-out tasks: `ways` classes with `shots`
drawings each, two disjoint mini-batches of `batch` examples drawn from them (as meta-training draws its
inner-loop batches), and at the start's weights the gradients g_i, g_j of the task loss that the inner loop
minimises (cross-entropy summed over the batch, BatchNorm with the batch's statistics). Reported per start,
as mean and standard error over tasks: g_i . g_j, the cosine g_i . g_j / (|g_i| |g_j|) and the mean of
|g_i|^2 and |g_j|^2; each over all parameters and over the body alone (without the head: a baseline's head is
a fresh random one, a meta-learned head is part of what Reptile learned), and in the JSON report tensor by
tensor (a BatchNorm layer fed by a small batch can have a gradient far larger than the rest, and then it alone
decides the totals). Dot products are taken in float64.
"""

import math
from pathlib import Path

import numpy as np
import torch

from .evaluate import CPU_TASKS_AT_ONCE
from .model import ModelSpec, task_losses
from .reptile import grouped
from .start_points import HEAD_TENSORS, flat, mean_sem, publish, shown
from .tasks import flatten_task, minibatch_order, to_tensor

PARTS = {"all": slice(None), "body": slice(None, -HEAD_TENSORS)}
QUANTITIES = ("inner_product", "cosine", "squared_norm")


def task_gradients(spec: ModelSpec, params: list, images: torch.Tensor, labels: torch.Tensor) -> list:
    """Grouped params [G, ...], one mini-batch per task images [G, b, C, H, W] -> each tensor's gradient [G, ...]
    of every task's summed loss (the groups are independent models, so one backward gives all of them)."""
    leaves = [p.detach().requires_grad_() for p in params]
    return list(torch.autograd.grad(task_losses(spec, leaves, images, labels).sum(), leaves))


def alignment(first: list, second: list, parts: dict = PARTS) -> dict:
    """Gradients of two mini-batches (grouped lists) -> {part: {quantity: [G] float64}}; parts: name -> slice of
    the parameter list."""
    groups = first[0].shape[0]
    result = {}
    for part, tensors in parts.items():
        g_i, g_j = flat(first[tensors], groups), flat(second[tensors], groups)
        inner = (g_i * g_j).sum(1)
        norm_i, norm_j = g_i.square().sum(1), g_j.square().sum(1)
        result[part] = {
            "inner_product": inner,
            "cosine": inner / (norm_i * norm_j).sqrt(),
            "squared_norm": (norm_i + norm_j) / 2,
        }
    return result


def sample_pairs(sampler, rng: np.random.Generator, *, tasks: int, ways: int, shots: int, batch: int):
    """Held-out tasks and two disjoint mini-batches of each: images [2, tasks, batch, ...] (uint8), labels."""
    images, _ = sampler.sample(rng, tasks, ways, shots)
    examples, labels = flatten_task(images)
    order = minibatch_order(rng, tasks, ways * shots, batch, 2)  # one shuffle per task: the batches are disjoint
    rows = np.arange(tasks)[None, :, None]
    return examples[rows, order], labels[rows, order]


def measure(start, images: np.ndarray, labels: np.ndarray, device: str = "cpu") -> dict:
    """One start's report row: mean ± sem over tasks of each quantity, for all parameters, the body and each tensor
    (by_tensor), and the per-task values of the first two."""
    tasks = images.shape[1]
    at_once = tasks if device == "cuda" else CPU_TASKS_AT_ONCE
    names = start.spec.param_names()
    parts = PARTS | {name: slice(i, i + 1) for i, name in enumerate(names)}
    per_task = {part: {q: [] for q in QUANTITIES} for part in parts}
    for first in range(0, tasks, at_once):
        part_of = slice(first, first + at_once)
        size = min(at_once, tasks - first)
        params = grouped([p.to(device) for p in start.params], size)
        batches = [
            task_gradients(
                start.spec,
                params,
                to_tensor(images[k, part_of]).to(device),
                torch.from_numpy(labels[k, part_of]).to(device),
            )
            for k in range(2)
        ]
        for part, values in alignment(*batches, parts).items():
            for quantity, value in values.items():
                per_task[part][quantity].extend(value.cpu().tolist())
    row = start.describe()
    for quantity in QUANTITIES:
        row[quantity] = {part: mean_sem(per_task[part][quantity]) for part in PARTS}
    row["by_tensor"] = {name: {q: mean_sem(per_task[name][q]) for q in QUANTITIES} for name in names}
    # 6 significant digits: thousands of tasks stay a small file, and the sem is far larger than the rounding
    row["per_task"] = {part: {q: [float(f"{v:.6g}") for v in per_task[part][q]] for q in QUANTITIES} for part in PARTS}
    return row


def table_columns() -> list:
    """The printed table's columns."""
    columns = [("start", lambda r: r["start"]), ("algorithm", lambda r: r["algorithm"])]
    for quantity, heading in (("inner_product", "g_i.g_j"), ("cosine", "cos"), ("squared_norm", "|g|^2")):
        for part in PARTS:
            columns.append((f"{heading} ({part})", lambda r, q=quantity, p=part: shown(r[q][p])))
    return columns


def figure_panels() -> list:
    """The figure's panels: the inner product, the cosine and |g|^2 over all parameters and over the body."""
    names = {"inner_product": "E[g_i . g_j]", "cosine": "cosine(g_i, g_j)", "squared_norm": "E[|g|^2]"}
    return [(f"{names[q]}, {part}", lambda r, q=q, p=part: r[q][p]) for part in ("all", "body") for q in QUANTITIES]


def plot_by_tensor(rows: list, out_path: Path) -> None:
    """The cosine of each parameter tensor's two gradients, a bar per start, with its standard error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows[0]["by_tensor"])
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(names)), 4))
    for i, row in enumerate(rows):
        summaries = [row["by_tensor"][name]["cosine"] for name in names]
        ax.bar(
            np.arange(len(names)) + (i - (len(rows) - 1) / 2) * width,
            [s["mean"] for s in summaries],
            width,
            yerr=[0 if math.isnan(s["sem"]) else s["sem"] for s in summaries],
            capsize=2,
            label=f"{row['start']} ({row['algorithm']}, it. {row['iteration']})",
        )
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set(ylabel="cosine(g_i, g_j)", title="Gradient cosine of two mini-batches of one task, tensor by tensor")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)


def run(sampler, split: dict, starts: list, settings: dict, *, device="cpu", out=None, plot=None, command="") -> dict:
    """Measure every start on the same tasks (settings: tasks, ways, shots, batch, seed); print, write, draw."""
    from .run_folder import machine

    images, labels = sample_pairs(
        sampler,
        np.random.default_rng(settings["seed"]),
        tasks=settings["tasks"],
        ways=settings["ways"],
        shots=settings["shots"],
        batch=settings["batch"],
    )
    rows = [measure(start, images, labels, device) for start in starts]
    contents = {"command": command, "split": split, "settings": settings, "device": device, **machine(), "starts": rows}
    title = (
        f"Gradients of two disjoint mini-batches of one task: {settings['tasks']} held-out "
        f"{settings['ways']}-way tasks, batches of {settings['batch']} (mean ± standard error)"
    )
    publish(contents, table_columns(), figure_panels(), out=out, plot=plot, title=title)
    if plot:
        plot_by_tensor(rows, by_tensor_path(plot))
    return contents


def by_tensor_path(plot: Path) -> Path:
    """Where the tensor-by-tensor figure goes beside --plot's: NAME-by-tensor.png."""
    return Path(plot).with_name(f"{Path(plot).stem}-by-tensor{Path(plot).suffix}")
