"""Evaluated checkpoints side by side: the JSON reports of `python -m training evaluate --json`, grouped
under labels (one report per seed), each accuracy drawn with its 95 % interval and each label's mean over
its seeds, one panel per evaluation (split, ways, shots, transductive or not). Measures nothing.

    python -m tools.plot_evaluations --reports Reptile=D/reptile-seed-0.json,D/reptile-seed-1.json \\
        --reports MAML=D/maml-seed-0.json --plot D/accuracy.png
"""

import argparse
import json
import sys
from pathlib import Path

from training.arguments import labelled_paths

RESULT_KEYS = ("split", "transductive", "ways", "shots", "accuracy", "ci95")


def load_results(path: Path) -> list:
    """A report's results; ValueError saying what is wrong with the file."""
    try:
        results = json.loads(path.read_text())["results"]
        if not results or not all(set(RESULT_KEYS) <= set(r) for r in results):
            raise KeyError("results")
    except OSError as error:
        raise ValueError(f"{path}: cannot be read ({error.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, KeyError):
        raise ValueError(f"{path}: not a report of `python -m training evaluate --json`") from None
    return results


def panel_name(result: dict) -> str:
    mode = "transductive" if result["transductive"] else "non-transductive"
    return f"{result['ways']}-way {result['shots']}-shot, {result['split']} characters, {mode}"


def collect(groups: list) -> dict:
    """[(label, [report, ...])] -> {panel: {label: [(accuracy, ci95) per report]}}, in the order given."""
    panels = {}
    for label, paths in groups:
        for path in paths:
            for result in load_results(path):
                seeds = panels.setdefault(panel_name(result), {}).setdefault(label, [])
                seeds.append((100 * result["accuracy"], 100 * result["ci95"]))
    return panels


def seed_mean(seeds: list) -> float:
    """The mean accuracy over a label's reports [(accuracy, ci95), ...]."""
    return sum(accuracy for accuracy, _ in seeds) / len(seeds)


def table(panels: dict) -> str:
    lines = []
    for panel, labels in panels.items():
        lines.append(panel)
        for label, seeds in labels.items():
            each = ", ".join(f"{a:.2f} ± {c:.2f}" for a, c in seeds)
            lines.append(f"  {label:32} mean {seed_mean(seeds):6.2f} %   {each}")
    return "\n".join(lines)


def plot(panels: dict, out_path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = len(panels)
    width = max(5.0, 0.7 * max(len(labels) for labels in panels.values()) + 2)
    fig, axes = plt.subplots(1, count, figsize=(width * count, 4.6), squeeze=False)
    for ax, (panel, labels) in zip(axes[0], panels.items(), strict=True):
        for x, seeds in enumerate(labels.values()):
            offsets = [0.0] if len(seeds) == 1 else [0.3 * (i / (len(seeds) - 1) - 0.5) for i in range(len(seeds))]
            for dx, (accuracy, ci) in zip(offsets, seeds, strict=True):
                ax.errorbar(x + dx, accuracy, yerr=ci, fmt="o", ms=4, color=f"C{x % 10}", capsize=2)
            ax.hlines(seed_mean(seeds), x - 0.3, x + 0.3, color=f"C{x % 10}", lw=2)
        ax.set_xticks(range(len(labels)), list(labels), rotation=30 if len(labels) > 3 else 0, ha="right")
        ax.set(ylabel="accuracy (%), 95 % intervals", title=panel)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.plot_evaluations", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--reports",
        type=labelled_paths("JSON"),
        action="append",
        required=True,
        help="LABEL=JSON[,JSON...]: evaluation reports drawn under one label (a report per seed); repeatable",
    )
    parser.add_argument("--plot", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--title", default="Held-out accuracy of evaluated checkpoints", help="the figure's title")
    args = parser.parse_args(argv)
    try:
        panels = collect(args.reports)
    except ValueError as error:
        parser.error(f"argument --reports: {error}")
    if not args.plot.parent.is_dir():
        parser.error(f"argument --plot: the folder {args.plot.parent} does not exist")
    print(table(panels))
    plot(panels, args.plot, args.title)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main(sys.argv[1:])
