"""The fitting step the *_fit.py scripts share: the product's logistic fitted on mirrored training
tasks (in-set queries against the novel character and the scribble), measured on held-out ones."""
import sys
import numpy as np
sys.path.insert(0, ".")
from tools.calibration import auroc, fit_logistic


def run(X, T, ways, label, width=34, digits=4):
    """X, T: [tasks, ways + 2, inputs] of the fitting and held-out tasks (the in-set queries, then
    the novel character, then the scribble). Prints AUROC and, at the threshold flagging 5 % of the
    fitting tasks' in-set queries, the share of each kind flagged on the held-out ones (the label
    padded to width, AUROC to digits, as each script printed them)."""
    y = np.tile(np.r_[np.zeros(ways), 1, 1], len(X))
    mean, scale, w, b = fit_logistic(X.reshape(-1, X.shape[-1]), y)
    sc = lambda A: ((A - mean) / scale) @ w + b
    fs, ts = sc(X), sc(T); lim = np.quantile(fs[:, :ways], 0.95)
    novel, scribble = auroc(ts[:, :ways].ravel(), ts[:, ways]), auroc(ts[:, :ways].ravel(), ts[:, ways + 1])
    print(f"{label:{width}} AUROC novel {novel:.{digits}f} scribble {scribble:.{digits}f}"
          f"  flagged in-set {100 * (ts[:, :ways] > lim).mean():.1f} novel {100 * (ts[:, ways] > lim).mean():.1f} scribble {100 * (ts[:, ways + 1] > lim).mean():.1f}")
