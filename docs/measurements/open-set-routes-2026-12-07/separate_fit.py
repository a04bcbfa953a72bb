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
mx, tx, ms, ts = f["mirrored_x"], f["test_x"], f["mirrored_s"], f["test_s"]
names = ["own loss", "P(pred | query)", "P(query | pred's rows)", "mean loss", "last step loss"]
for k, name in enumerate(names):
    a = auroc(ts[:, :ways, k].ravel(), ts[:, ways, k]); sa = auroc(ts[:, :ways, k].ravel(), ts[:, ways + 1, k])
    print(f"{name:24} alone: novel {max(a, 1 - a):.3f} scribble {max(sa, 1 - sa):.3f}")
logit = lambda p: np.log(np.clip(p, 1e-12, 1)) - np.log(np.clip(1 - p, 1e-12, 1))
def feats(s):
    return np.stack([np.log(s[..., 0] + 1e-9), logit(s[..., 1]), logit(s[..., 2]), np.log(s[..., 3] + 1e-9), np.log(s[..., 4] + 1e-9)], -1)
run(mx, tx, "product 17")
run(feats(ms), feats(ts), "separation 5 alone")
run(np.concatenate([mx, feats(ms)], -1), np.concatenate([tx, feats(ts)], -1), "17 + separation 5")
