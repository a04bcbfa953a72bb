import sys
import numpy as np
sys.path.insert(0, ".")
from tools.calibration import auroc, fit_logistic
ways = int(sys.argv[1])
for path in sys.argv[2:]:
    f = np.load(path)
    X, T = f["fit_x"], f["test_x"]
    y = np.tile(np.r_[np.zeros(ways), 1, 1], len(X))
    mean, scale, w, b = fit_logistic(X.reshape(-1, X.shape[-1]), y)
    sc = lambda A: ((A - mean) / scale) @ w + b
    fs, ts = sc(X), sc(T); lim = np.quantile(fs[:, :ways], 0.95)
    acc = (f["test_l"][:, :ways].argmax(-1) == np.arange(ways)).mean()
    msp = T[..., 0]
    print(f"{path.split('/')[-1]:28} accuracy {100 * acc:.2f} % | msp AUROC novel {auroc(msp[:, :ways].ravel(), msp[:, ways]):.3f} | 9-input AUROC novel {auroc(ts[:, :ways].ravel(), ts[:, ways]):.3f} scribble {auroc(ts[:, :ways].ravel(), ts[:, ways + 1]):.3f}"
          f"  flagged in-set {100 * (ts[:, :ways] > lim).mean():.1f} novel {100 * (ts[:, ways] > lim).mean():.1f} scribble {100 * (ts[:, ways + 1] > lim).mean():.1f}")
