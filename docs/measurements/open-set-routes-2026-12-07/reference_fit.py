import sys
import numpy as np
from pathlib import Path
sys.path.insert(0, ".")
sys.path.insert(0, str(Path(__file__).parent))
from tools.calibration import auroc, fit_logistic
import fit as shared_fit
ways = int(sys.argv[1]); f = np.load(sys.argv[2])
def zinputs(split, use):
    cos, bank = f[f"{split}_cos"], f[f"{split}_bank"]  # [T, q, 8, C], [T, R, 8, C]
    mu, sd = bank.mean(1, keepdims=True), bank.std(1, keepdims=True) + 1e-6
    z = (cos - mu) / sd
    if use == "z":
        return -z.max(-1)  # [T, q, 8]
    if use == "zpick":  # z of the class with the highest raw cosine
        idx = cos.argmax(-1)[..., None]
        return -np.take_along_axis(z, idx, -1)[..., 0]
    if use == "quantile":  # raw cosine minus the bank's largest cosine for that class
        top = bank.max(1, keepdims=True)
        return -(cos - top).max(-1)
def fit(extra_fit, extra_test, label):
    X = f["mirrored_x"] if extra_fit is None else np.concatenate([f["mirrored_x"], extra_fit], -1)
    T = f["test_x"] if extra_test is None else np.concatenate([f["test_x"], extra_test], -1)
    shared_fit.run(X, T, ways, label, digits=3)
fit(None, None, "the product's 9 inputs")
for use in ("z", "zpick", "quantile"):
    a, b = zinputs("mirrored", use), zinputs("test", use)
    t = b
    print(f"  {use} alone per block (novel AUROC):", " ".join(f"{auroc(t[:, :ways, i].ravel(), t[:, ways, i]):.3f}" for i in range(8)))
    fit(a, b, f"9 + 8 {use}")
    fit(np.concatenate([f['mirrored_x'][..., :1], a], -1), np.concatenate([f['test_x'][..., :1], b], -1), f"msp + 8 {use} (+9)")
# at a threshold that flags exactly 5 % of the held-out in-set queries (for comparing scores only)
def at_five(extra_fit, extra_test, label):
    X = f["mirrored_x"] if extra_fit is None else np.concatenate([f["mirrored_x"], extra_fit], -1)
    T = f["test_x"] if extra_test is None else np.concatenate([f["test_x"], extra_test], -1)
    y = np.tile(np.r_[np.zeros(ways), 1, 1], len(X))
    mean, scale, w, b = fit_logistic(X.reshape(-1, X.shape[-1]), y)
    ts = ((T - mean) / scale) @ w + b; lim = np.quantile(ts[:, :ways], 0.95)
    print(f"{label:34} at 5 % of held-out in-set: novel {100 * (ts[:, ways] > lim).mean():.1f} scribble {100 * (ts[:, ways + 1] > lim).mean():.1f}")
at_five(None, None, "the product's 9 inputs")
at_five(zinputs("mirrored", "z"), zinputs("test", "z"), "9 + 8 z")
