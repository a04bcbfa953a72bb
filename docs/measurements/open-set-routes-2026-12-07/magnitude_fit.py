import sys
import numpy as np
sys.path.insert(0, ".")
from tools.calibration import auroc, fit_logistic
ways = int(sys.argv[1]); f = np.load(sys.argv[2])
names = ["ink"] + [f"pooled{b}" for b in range(1, 5)] + [f"flat{b}" for b in range(1, 5)]
fe, te = f["fit_e"], f["test_e"]
for i, nm in enumerate(names):
    s = te[..., i]
    print(f"{nm:8} alone: novel {auroc(s[:, :ways].ravel(), s[:, ways]):.3f} scribble {auroc(s[:, :ways].ravel(), s[:, ways + 1]):.3f}")
def combo(cols, label):
    X = np.concatenate([f["fit_x"], fe[..., cols]], -1); T = np.concatenate([f["test_x"], te[..., cols]], -1)
    y = np.tile(np.r_[np.zeros(ways), 1, 1], len(X))
    mean, scale, w, b = fit_logistic(X.reshape(-1, X.shape[-1]), y)
    sc = lambda A: ((A - mean) / scale) @ w + b
    fs, ts = sc(X), sc(T); lim = np.quantile(fs[:, :ways], 0.95)
    print(f"{label:28} AUROC novel {auroc(ts[:, :ways].ravel(), ts[:, ways]):.3f} scribble {auroc(ts[:, :ways].ravel(), ts[:, ways + 1]):.3f}"
          f"  flagged in-set {100 * (ts[:, :ways] > lim).mean():.1f} novel {100 * (ts[:, ways] > lim).mean():.1f} scribble {100 * (ts[:, ways + 1] > lim).mean():.1f}")
combo([], "the 9 inputs")
combo([0], "+ ink")
combo([1, 2, 3, 4], "+ pooled norms")
combo([5, 6, 7, 8], "+ flat norms")
combo(list(range(9)), "+ all")
