"""The calibration figure of tools/fit_open_set.py: ECE at every setting, and reliability diagrams
(accuracy against confidence) of the held-out in-set queries, one curve per shot count."""

from pathlib import Path

import numpy as np

from tools.calibration import reliability, softmax


def plot_calibration(runs: dict, figures: list, path: Path) -> None:
    """runs {(ways, shots): (fitting, held-out)} and fit()'s figures -> one PNG with two panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ways_all = sorted({w for w, _ in runs})
    shots_all = sorted({s for _, s in runs})
    ece = np.full((len(ways_all), len(shots_all)), np.nan)
    for row in figures:
        ece[ways_all.index(row["ways"]), shots_all.index(row["shots"])] = row["ece"]
    fig, (heat, curves) = plt.subplots(1, 2, figsize=(11, 4.6))
    top = max(0.02, float(np.nanmax(ece)))
    image = heat.imshow(ece, cmap="viridis", vmin=0, vmax=top, origin="lower")
    for i in range(len(ways_all)):
        for j in range(len(shots_all)):
            shade = "black" if ece[i, j] > 0.6 * top else "white"  # readable on viridis' light end
            heat.text(j, i, f"{ece[i, j]:.3f}", ha="center", va="center", fontsize=7, color=shade)
    heat.set(
        xticks=range(len(shots_all)),
        xticklabels=shots_all,
        yticks=range(len(ways_all)),
        yticklabels=ways_all,
        xlabel="examples per class",
        ylabel="classes",
        title="ECE of the bars on held-out characters (15 bins)",
    )
    fig.colorbar(image, ax=heat, fraction=0.046)
    curves.plot([0, 1], [0, 1], color="0.7", lw=1)
    for shots in shots_all:
        confidence, correct = [], []
        for (ways, s), (_, held_out) in runs.items():
            if s == shots:
                logits = held_out["logits"][:, :ways].reshape(-1, ways)
                confidence.append(softmax(logits).max(-1))
                correct.append(logits.argmax(-1) == np.tile(np.arange(ways), len(held_out["logits"])))
        found = reliability(np.concatenate(confidence), np.concatenate(correct))
        shown = [b for b in found["bins"] if b["count"] >= 20]
        curves.plot(
            [b["confidence"] for b in shown],
            [b["accuracy"] for b in shown],
            "o-",
            ms=3,
            label=f"{shots}-shot, 2-10 classes: ECE {found['ece']:.4f}",
        )
    curves.set(
        xlabel="confidence (largest probability), bins of >= 20 queries",
        ylabel="accuracy",
        title="Reliability, held-out in-set queries",
        xlim=(0.2, 1.01),
        ylim=(0.2, 1.01),
    )
    curves.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
