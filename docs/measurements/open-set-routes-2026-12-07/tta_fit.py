import sys
import numpy as np
sys.path.insert(0, ".")
from tools.calibration import auroc, fit_logistic
ways = int(sys.argv[1]); f = np.load(sys.argv[2])
def run(X, T, label):
    y = np.tile(np.r_[np.zeros(ways), 1, 1], len(X))
    mean, scale, w, b = fit_logistic(X.reshape(-1, X.shape[-1]), y)
    sc = lambda A: ((A - mean) / scale) @ w + b
    fs, ts = sc(X), sc(T); lim = np.quantile(fs[:, :ways], 0.95)
    print(f"{label:34} AUROC novel {auroc(ts[:, :ways].ravel(), ts[:, ways]):.4f} scribble {auroc(ts[:, :ways].ravel(), ts[:, ways + 1]):.4f}"
          f"  flagged in-set {100 * (ts[:, :ways] > lim).mean():.1f} novel {100 * (ts[:, ways] > lim).mean():.1f} scribble {100 * (ts[:, ways + 1] > lim).mean():.1f}")
run(f["mirrored_x"], f["test_x"], "product 17 (the drawing)")
run(f["mirrored_m"], f["test_m"], "17 averaged over the copies")
run(np.concatenate([f["mirrored_x"], f["mirrored_s"]], -1), np.concatenate([f["test_x"], f["test_s"]], -1), "17 + their spread over the copies")
run(np.concatenate([f["mirrored_m"], f["mirrored_s"]], -1), np.concatenate([f["test_m"], f["test_s"]], -1), "averaged 17 + spread")
