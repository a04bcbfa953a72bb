"""The open-set study's analysis: AUROC, reliability and ECE, temperature and logistic fits, the
flag rates at a threshold fitted on one set of tasks and reported on another (benchmarks/open_set_study.py)."""

from pathlib import Path

import numpy as np

from tools.calibration import auroc, fit_logistic, fit_temperature, reliability, softmax

# Logistic combinations besides "combo_all" (every score): what the logits and the features before the
# head give; and the confidence with the cosine to the nearest class mean in every block.
BLOCKS = 4
COMBOS = {
    "combo_final": ("msp", "entropy", "energy", "adapted_cosine_mean", "adapted_euclid_mean"),
    "combo_blocks": (
        "msp",
        "adapted_cosine_mean",
        *(f"adapted_block{b}_cosine_mean" for b in range(1, BLOCKS)),
        *(f"adapted_block{b}_pooled_cosine_mean" for b in range(1, BLOCKS + 1)),
    ),
}


def split_rows(table: np.ndarray, ways: int) -> tuple:
    """[tasks, N + 2] -> (in-set [tasks * N], novel [tasks], scribbles [tasks])."""
    return table[:, :ways].ravel(), table[:, ways], table[:, ways + 1]


def fit_combination(runs: list, columns) -> tuple:
    """Logistic weights on `columns`, in-set queries against novel ones and scribbles, over the tasks of
    every (run, ways) in `runs` (one setting, or several pooled)."""
    x = np.concatenate([np.stack([run["scores"][c].ravel() for c in columns], 1) for run, _ in runs])
    y = np.concatenate([np.tile(np.r_[np.zeros(ways), 1, 1], len(run["logits"])) for run, ways in runs])
    return columns, fit_logistic(x, y)


def combined(scores: dict, combination: tuple) -> np.ndarray:
    """A fitted combination's score of every query in `scores` (same shape as each score)."""
    columns, (mean, std, w, b) = combination
    return ((np.stack([scores[c] for c in columns], -1) - mean) / std) @ w + b


def flag_figures(fit_table: np.ndarray, table: np.ndarray, ways: int, correct: np.ndarray, inset_rate: float) -> dict:
    """One score's figures on the held-out tasks (`table`), its threshold flagging `inset_rate` of the in-set
    queries of the fitting tasks (`fit_table`)."""
    fit_in, _, _ = split_rows(fit_table, ways)
    threshold = float(np.quantile(fit_in, 1 - inset_rate))
    inset, novel, scribbles = split_rows(table, ways)
    held_out = float(np.quantile(inset, 1 - inset_rate))  # for comparison only: chosen on the figures' own tasks
    return {
        "auroc_novel": auroc(inset, novel),
        "auroc_scribble": auroc(inset, scribbles),
        "threshold": threshold,
        "flagged": {
            "inset": float((inset > threshold).mean()),
            "novel": float((novel > threshold).mean()),
            "scribble": float((scribbles > threshold).mean()),
        },
        "inset_right_and_answered": float(((inset <= threshold) & correct.ravel()).mean()),
        "flagged_inset_fitting_tasks": float((fit_in > threshold).mean()),
        "flagged_at_held_out_threshold": {
            "novel": float((novel > held_out).mean()),
            "scribble": float((scribbles > held_out).mean()),
        },
    }


def analyse(fit: dict, test: dict, ways: int, inset_rate: float, pooled: dict) -> dict:
    """Thresholds, temperature and combinations from `fit` (training characters); figures on `test`.
    pooled: {name: a combination fitted over several settings}, each given its own threshold here."""
    truth = np.arange(ways)
    fit_logits, test_logits = fit["logits"][:, :ways], test["logits"][:, :ways]
    temperature = fit_temperature(fit_logits.reshape(-1, ways), np.tile(truth, len(fit_logits)))
    fit_scores, test_scores = dict(fit["scores"]), dict(test["scores"])
    for scores, logits in ((fit_scores, fit["logits"]), (test_scores, test["logits"])):
        scores["msp_temperature"] = 1 - softmax(logits, temperature).max(-1)
    combinations = {"combo_all": sorted(fit_scores), **COMBOS}
    fitted = {name: fit_combination([({**fit, "scores": fit_scores}, ways)], c) for name, c in combinations.items()}
    for name, combination in {**fitted, **pooled}.items():
        fit_scores[name], test_scores[name] = combined(fit_scores, combination), combined(test_scores, combination)
    correct = (test_logits.argmax(-1) == truth).ravel()
    calibrated = softmax(test_logits, temperature)
    return {
        "accuracy": float(correct.mean()),
        "ece": reliability(softmax(test_logits).max(-1).ravel(), correct),
        "temperature": temperature,
        "ece_temperature": reliability(calibrated.max(-1).ravel(), correct),
        "ece_fitting_tasks": reliability(softmax(fit_logits).max(-1).ravel(), (fit_logits.argmax(-1) == truth).ravel())[
            "ece"
        ],
        "candidates": {
            name: flag_figures(fit_scores[name], test_scores[name], ways, correct, inset_rate) for name in fit_scores
        },
        "combinations": {
            name: {"columns": list(c), "mean": m.tolist(), "std": sd.tolist(), "weights": w.tolist(), "bias": float(b)}
            for name, (c, (m, sd, w, b)) in {**fitted, **pooled}.items()
            if name != "combo_all"
        },
    }


def plot_reliability(results: dict, path: Path) -> None:
    """One reliability diagram per setting: accuracy against confidence, before and after the temperature."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, len(results))
    rows = -(-len(results) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 4 * rows), squeeze=False)
    for ax in axes.ravel()[len(results) :]:
        ax.axis("off")
    for ax, (setting, r) in zip(axes.ravel(), results.items(), strict=False):
        ax.plot([0, 1], [0, 1], color="0.7", lw=1)
        for key, label in (("ece", "as adapted"), ("ece_temperature", f"T = {r['temperature']:.2f}")):
            shown = [b for b in r[key]["bins"] if b["count"] >= 10]
            ax.plot(
                [b["confidence"] for b in shown],
                [b["accuracy"] for b in shown],
                "o-",
                ms=3,
                label=f"{label}: ECE {r[key]['ece']:.4f}",
            )
        ways, shots = setting.split("x")
        ax.set(
            xlabel="confidence (max probability), bins of >= 10 queries",
            ylabel="accuracy",
            title=f"{ways}-way {shots}-shot, in-set queries",
            xlim=(0.2, 1.01),
            ylim=(0.2, 1.01),
        )
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
