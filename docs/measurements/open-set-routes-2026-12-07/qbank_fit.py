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
mx, tx, mq, tq = f["mirrored_x"], f["test_x"], f["mirrored_q"], f["test_q"]
kinds = ["max", "top5", "mean", "max-class"]
for k, kind in enumerate(kinds):
    print(kind, "alone per view (novel AUROC):", " ".join(f"{auroc(tq[:, :ways, 4 * v + k].ravel(), tq[:, ways, 4 * v + k]):.3f}" for v in range(8)))
run(mx, tx, "product 17")
for k, kind in enumerate(kinds):
    sel = [4 * v + k for v in range(8)]
    run(np.concatenate([mx, mq[..., sel]], -1), np.concatenate([tx, tq[..., sel]], -1), f"17 + 8 {kind}")
run(np.concatenate([mx, mq], -1), np.concatenate([tx, tq], -1), "17 + all 32")
