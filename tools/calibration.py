"""Statistics of scores and probabilities: AUROC, reliability and ECE, temperature and logistic fits.

numpy only; used by tools/fit_open_set.py and the open-set benchmarks.
"""

import numpy as np

ECE_BINS = 15


def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """Probability that a positive scores above a negative (ties count half)."""
    values = np.concatenate([negatives, positives])
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]
    n_pos, n_neg = len(positives), len(negatives)
    return float((ranks[n_neg:].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / temperature) over the last axis."""
    z = logits / temperature
    z = np.exp(z - z.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> dict:
    """ECE over equal-width confidence bins and the per-bin figures of a reliability diagram."""
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            conf, acc = float(confidence[mask].mean()), float(correct[mask].mean())
            ece += mask.mean() * abs(conf - acc)
            rows.append({"bin": b, "count": int(mask.sum()), "confidence": conf, "accuracy": acc})
    return {"ece": float(ece), "bins": rows}


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T minimising the mean negative log-likelihood of softmax(logits / T) (golden section on log T)."""

    def nll(log_t):
        z = logits / np.exp(log_t)
        z = z - z.max(-1, keepdims=True)
        return float((np.log(np.exp(z).sum(-1)) - z[np.arange(len(z)), labels]).mean())

    lo, hi, ratio = np.log(0.05), np.log(20.0), (np.sqrt(5) - 1) / 2
    for _ in range(80):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        lo, hi = (lo, b) if nll(a) < nll(b) else (a, hi)
    return float(np.exp((lo + hi) / 2))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, iters: int = 50) -> tuple:
    """Class-balanced L2 logistic regression on standardised columns (Newton) -> (mean, std, w, b)."""
    mean, std = x.mean(0), x.std(0) + 1e-12
    z = np.concatenate([(x - mean) / std, np.ones((len(x), 1))], 1)
    weight = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean())) / len(y)
    w = np.zeros(z.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-z @ w))
        grad = z.T @ (weight * (p - y)) + l2 * np.r_[w[:-1], 0]
        hess = (z * (weight * p * (1 - p))[:, None]).T @ z + l2 * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return mean, std, w[:-1], w[-1]
