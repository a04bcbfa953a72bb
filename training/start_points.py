"""The weights that `gradient-alignment` and `solution-distance` measure from, the held-out tasks they share,
and how their results are summarised, printed, written and drawn.

A start is a checkpoint's parameters as stored (a Reptile or FOMAML run: its meta-learned body and head;
the joint-training baseline: its trained body with the fresh Glorot head it is evaluated with), or a random
initialization (`init_params`; by default with the first checkpoint's run seed: the very weights that run
started from). Every start is measured on the same tasks, drawn from the held-out classes of the first
checkpoint's run; a checkpoint whose run held out other classes is refused, since its "held-out" tasks would
include classes it was trained on. A run folder keeps only its latest checkpoint, so a curve along training
is made by passing checkpoints copied at several iterations, in order.
"""

import json
import math
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data import load_task_data
from .model import ModelSpec, init_params

HEAD_TENSORS = 2  # fc.weight and fc.bias, the last two of ModelSpec.param_names()


@dataclass
class Start:
    label: str  # the checkpoint's path, or "random init (seed S)"
    algorithm: str  # the run's config algorithm (reptile, fomaml, joint, ...), or "random"
    iteration: int  # meta-iterations (or joint-training steps) behind the weights; 0 for a random init
    spec: ModelSpec
    params: list  # no group axis; the last two tensors are the head (fc.weight, fc.bias)

    def describe(self) -> dict:
        """What a report says about the start."""
        return {"start": self.label, "algorithm": self.algorithm, "iteration": self.iteration}


def load_starts(paths: list, trained: list, data_dir, random_init: bool, init_seed: int | None):
    """(held-out TaskSampler, its split's description, starts) for checkpoints `paths` (loaded as `trained`, each
    training.checkpoint.load_trained's tuple) and, with random_init, a random initialization of the first
    checkpoint's architecture. A ValueError naming --checkpoint when the checkpoints' held-out classes differ."""
    _, config, spec, _ = trained[0]
    data = load_task_data(config.dataset, data_dir, config.seed)
    held_out = {(config.dataset, config.seed): data.test_classes}
    starts = []
    for path, (payload, other, other_spec, state) in zip(paths, trained, strict=True):
        key = (other.dataset, other.seed)
        if key not in held_out:
            held_out[key] = load_task_data(other.dataset, data_dir, other.seed, download=False).test_classes
        if held_out[key] != data.test_classes:
            raise ValueError(
                f"argument --checkpoint: {path} holds out other classes ({other.dataset}, run seed {other.seed}) "
                f"than {paths[0]} ({config.dataset}, run seed {config.seed}); measure them separately"
            )
        if other_spec.ways != spec.ways:
            raise ValueError(f"argument --checkpoint: {path} has a {other_spec.ways}-way head, {paths[0]} {spec.ways}")
        starts.append(Start(str(path), other.algorithm, int(payload["iteration"]), other_spec, list(state.params)))
    if random_init:
        seed = config.seed if init_seed is None else init_seed
        params = init_params(spec, torch.Generator().manual_seed(seed))
        starts.append(Start(f"random init (seed {seed})", "random", 0, spec, params))
    split = {"dataset": config.dataset, "run_seed": config.seed, "held_out_classes": len(data.test_classes)}
    return data.test, split, starts


def check_shots(sampler, shots: int, flag: str = "--shots") -> None:
    """A ValueError naming `flag` when the held-out classes have fewer drawings than asked for."""
    drawings = sampler.images.shape[1]
    if shots > drawings:
        raise ValueError(f"argument {flag}: the held-out classes have {drawings} examples each, {shots} asked for")


def flat(tensors: list, groups: int) -> torch.Tensor:
    """Grouped tensors [G, ...] -> one float64 row per group [G, total size]."""
    return torch.cat([t.detach().reshape(groups, -1).double() for t in tensors], dim=1)


def mean_sem(values) -> dict:
    """Mean and standard error of the mean (NaN for a single value)."""
    values = np.asarray(values, dtype=np.float64)
    sem = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return {"mean": float(values.mean()), "sem": float(sem)}


def shown(summary: dict) -> str:
    """A mean ± sem for the table."""
    return f"{summary['mean']:.4g} ± {summary['sem']:.2g}"


def print_table(rows: list, columns: list) -> None:
    """One line per start; columns: (heading, function of a row -> text)."""
    cells = [[heading for heading, _ in columns]] + [[cell(row) for _, cell in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    for line in cells:
        print("  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip())


def write_report(path: Path, contents: dict) -> None:
    """The JSON report, indented, each list of numbers (per-task values) on one line."""
    text = json.dumps(contents, indent=2)
    text = re.sub(r"\[[-+0-9.eENaIfinty,\s]+\]", lambda match: " ".join(match.group(0).split()), text)
    Path(path).write_text(text + "\n")


def publish(contents: dict, columns: list, panels: list, *, out: Path | None, plot: Path | None, title: str) -> None:
    """Print contents["starts"] as a table, and write the JSON report (out) and the figure (plot) when asked."""
    print_table(contents["starts"], columns)
    if out:
        write_report(out, contents)
    if plot:
        plot_bars(contents["starts"], panels, plot, title)


def run_name(start: str) -> str:
    """A start's name on a plot: its checkpoint's run folder, with the curve's name for the learning-curve
    runner's OUT/<curve>/seed-<s> layout; a random start's label as it is."""
    folder = Path(start).parent
    if folder.name.startswith("seed-") and folder.parent.name:
        return f"{folder.parent.name} {folder.name}"
    return folder.name or start


def plot_bars(rows: list, panels: list, out_path: Path, title: str) -> None:
    """One panel per (heading, function of a row -> {"mean", "sem"}): a bar per start with its standard error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    short = [f"{r['algorithm']}, it. {r['iteration']}" for r in rows]
    crowded = len(rows) > 4
    if crowded and len(set(short)) == len(short):  # many starts: a run's snapshots, told apart by their iteration
        names = short
    elif crowded:  # many runs: one slanted line each
        names = [f"{run_name(r['start'])} ({s})" for r, s in zip(rows, short, strict=True)]
    else:
        names = [f"{textwrap.fill(run_name(r['start']), 16)}\n{s}" for r, s in zip(rows, short, strict=True)]
    columns = 3 if len(panels) % 3 == 0 else min(2, len(panels))
    lines = -(-len(panels) // columns)
    fig, axes = plt.subplots(lines, columns, figsize=(5 * columns, 4 * lines), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (heading, value) in zip(axes.flat, panels, strict=False):
        summaries = [value(r) for r in rows]
        ax.bar(
            range(len(rows)),
            [s["mean"] for s in summaries],
            yerr=[0 if math.isnan(s["sem"]) else s["sem"] for s in summaries],
            capsize=4,
            color=[f"C{i}" for i in range(len(rows))],
        )
        ax.set_xticks(
            range(len(rows)), names, fontsize=8, rotation=30 if crowded else 0, ha="right" if crowded else "center"
        )
        means = [s["mean"] for s in summaries]
        if min(means) > 0 and max(means) > 30 * min(means):  # starts orders of magnitude apart: each bar readable
            ax.set_yscale("log")
            heading += " (log scale)"
        else:
            ax.axhline(0, color="black", linewidth=0.6)
        ax.set_title(heading, fontsize=10)
    fig.suptitle(textwrap.fill(title, 40 * columns), fontsize=10)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
