import sys, numpy as np
sys.path.insert(0, "/work/main")
from tools.calibration import auroc, fit_logistic
ways = int(sys.argv[1]); f = np.load(sys.argv[2])
def maha_fit(Z):
    mu = Z.mean(0); C = np.cov(Z.T) + 1e-3 * np.eye(Z.shape[1]); return mu, np.linalg.inv(C)
def maha(Z, fit):
    mu, Pi = fit; d = Z - mu; return np.einsum("...i,ij,...j->...", d, Pi, d)
fitX, fitP, fitM = f["mirrored_inputs"], f["mirrored_pooled"], f["mirrored_meta"]
for feat in ("pooled", "meta"):
    for blocks in ([0], [1], [2], [3], [0, 1], [0, 1, 2, 3]):
        cols = np.concatenate([np.arange(64 * b, 64 * b + 64) for b in blocks])
        fit = maha_fit(f[f"mirrored_{feat}"][:, :ways].reshape(-1, 256)[:, cols])
        s = maha(f[f"test_{feat}"][..., cols], fit)
        str_ = maha(f[f"train_{feat}"][..., cols], fit)
        print(feat, blocks, "novel %.3f scribble %.3f  | train-inset vs test-inset %.3f" % (auroc(s[:, :ways].ravel(), s[:, ways]), auroc(s[:, :ways].ravel(), s[:, ways + 1]), auroc(str_[:, :ways].ravel(), s[:, :ways].ravel())))
def combo(extra_fit, extra_test, label):
    X = fitX if extra_fit is None else np.concatenate([fitX, extra_fit[..., None]], -1)
    T = f["test_inputs"] if extra_test is None else np.concatenate([f["test_inputs"], extra_test[..., None]], -1)
    y = np.tile(np.r_[np.zeros(ways), 1, 1], len(X))
    mean, scale, w, b = fit_logistic(X.reshape(-1, X.shape[-1]), y)
    sc = lambda A: ((A - mean) / scale) @ w + b
    fs, ts = sc(X), sc(T)
    lim = np.quantile(fs[:, :ways], 0.95)
    print(label, "AUROC novel %.3f scribble %.3f  flagged inset %.1f novel %.1f scribble %.1f" % (
        auroc(ts[:, :ways].ravel(), ts[:, ways]), auroc(ts[:, :ways].ravel(), ts[:, ways + 1]),
        100 * (ts[:, :ways] > lim).mean(), 100 * (ts[:, ways] > lim).mean(), 100 * (ts[:, ways + 1] > lim).mean()))
combo(None, None, "9 inputs      ")
for feat in ("pooled", "meta"):
    for blocks in ([1], [0, 1], [0, 1, 2, 3]):
        cols = np.concatenate([np.arange(64 * b, 64 * b + 64) for b in blocks])
        fit = maha_fit(fitM[:, :ways].reshape(-1, 256)[:, cols] if feat == "meta" else fitP[:, :ways].reshape(-1, 256)[:, cols])
        combo(np.log(maha(f[f"mirrored_{feat}"][..., cols], fit)), np.log(maha(f[f"test_{feat}"][..., cols], fit)), f"+{feat}{blocks}")
