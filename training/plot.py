"""Learning-curve PNG from a run's metrics.jsonl."""

import json
from pathlib import Path


def plot_learning_curve(metrics_path: Path, out_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in Path(metrics_path).read_text().splitlines() if line.strip()]
    evals = [r for r in rows if "test_accuracy" in r]
    losses = [r for r in rows if "inner_loss" in r]
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(10, 4))
    if evals:
        its = [r["iteration"] for r in evals]
        acc_ax.plot(its, [100 * r["train_accuracy"] for r in evals], label="training characters")
        acc_ax.plot(its, [100 * r["test_accuracy"] for r in evals], label="held-out characters")
        acc_ax.legend()
    acc_ax.set(xlabel="meta-iteration", ylabel="few-shot accuracy (%)", title="Accuracy after fine-tuning")
    if losses:
        loss_ax.plot([r["iteration"] for r in losses], [r["inner_loss"] for r in losses])
    loss_ax.set(xlabel="meta-iteration", ylabel="cross-entropy per example", title="Inner loss (last step)")
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
