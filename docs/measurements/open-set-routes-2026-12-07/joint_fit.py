import sys
import numpy as np
sys.path.insert(0, ".")
from tools.calibration import auroc, fit_logistic
ways = int(sys.argv[1]); f = np.load(sys.argv[2])
def run(cols_fit, cols_test, label):
    X, T = cols_fit, cols_test
    y = np.tile(np.r_[np.zeros(ways), 1, 1], len(X))
    mean, scale, w, b = fit_logistic(X.reshape(-1, X.shape[-1]), y)
    sc = lambda A: ((A - mean) / scale) @ w + b
    fs, ts = sc(X), sc(T); lim = np.quantile(fs[:, :ways], 0.95)
    print(f"{label:30} AUROC novel {auroc(ts[:, :ways].ravel(), ts[:, ways]):.4f} scribble {auroc(ts[:, :ways].ravel(), ts[:, ways + 1]):.4f}"
          f"  flagged in-set {100 * (ts[:, :ways] > lim).mean():.1f} novel {100 * (ts[:, ways] > lim).mean():.1f} scribble {100 * (ts[:, ways + 1] > lim).mean():.1f}")
mx, tx, mj, tj = f["mirrored_x"], f["test_x"], f["mirrored_j"], f["test_j"]
names = [f"b{b}" for b in range(1,5)] + [f"b{b}p" for b in range(1,5)]
names = names + [n + "z" for n in names]
print("joint inputs alone (novel AUROC):", " ".join(f"{n}:{auroc(tj[:, :ways, i].ravel(), tj[:, ways, i]):.3f}" for i, n in enumerate(names)))
run(mx[..., :9], tx[..., :9], "product 9")
run(mx, tx, "product 17")
run(mj, tj, "joint 16")
run(np.concatenate([mx[..., :1], mj], -1), np.concatenate([tx[..., :1], tj], -1), "msp + joint 16")
run(np.concatenate([mx, mj], -1), np.concatenate([tx, tj], -1), "product 17 + joint 16")
run(np.concatenate([mx, mj[..., :8]], -1), np.concatenate([tx, tj[..., :8]], -1), "product 17 + joint 8 cos")
run(np.concatenate([mx, mj[..., 8:]], -1), np.concatenate([tx, tj[..., 8:]], -1), "product 17 + joint 8 z")
