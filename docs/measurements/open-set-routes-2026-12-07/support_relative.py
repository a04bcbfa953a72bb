"""Experiment: the reference bank's normalisation with no extra batches: each class's cosines with the
support rows of the *other* classes (already in every query's batch) as its references."""
import sys, time
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, ".")
from bundle.open_set import score_inputs
from tools.calibration import auroc, fit_logistic
from tools.open_set_tasks import OpenSetTasks, embed, query_batches
torch.set_num_threads(1)
ways, shots, count, seed = (int(a) for a in sys.argv[1:5])
tasks = OpenSetTasks(Path("checkpoints/omniglot-20w1s/checkpoint.pt"), Path("static/models/omniglot-20w"), Path("../shared/data/omniglot"))

def parts(feats, shapes):
    out, start = [], 0
    for c, h, w in shapes:
        x = feats[..., start:start + c * h * w]; start += c * h * w
        out += [x, x.reshape(*x.shape[:-1], c, h * w).mean(-1)]
    return out[0::2] + out[1::2]  # flat blocks, then pooled

def unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)

out = {}
for split in ("mirrored", "test"):
    t0 = time.time(); X, Z = [], []
    for _, params, support, labels, queries in tasks.adapted(split, ways, shots, count, seed):
        for t in range(len(support)):
            sup, lab = support[t], labels[t].numpy()
            q, n = len(queries[t]), len(sup)
            b = query_batches(sup, queries[t]).reshape(1, -1, *sup.shape[1:])
            with torch.no_grad():
                blocks, _, logits = embed(tasks.spec, [p[t:t+1] for p in params], b, batches=q)
            feats = torch.cat([h.reshape(n + 1, q, -1).transpose(0, 1) for h in blocks], -1).double().numpy()
            shapes = [list(h.shape[1:]) for h in blocks]
            probs = logits[0].reshape(n + 1, q, -1)[-1].double().softmax(-1).numpy()
            X.append(score_inputs(feats, probs, lab, ways, shapes))
            onehot = np.eye(ways)[lab] / np.bincount(lab, minlength=ways)
            zs = []
            for x in parts(feats, shapes):  # x [q, n+1, d]
                means = unit(np.einsum("sc,qsd->qcd", onehot, x[:, :-1]))  # [q, C, d]
                cos_q = np.einsum("qcd,qd->qc", means, unit(x[:, -1]))  # [q, C]
                cos_s = np.einsum("qcd,qsd->qsc", means, unit(x[:, :-1]))  # [q, S, C]
                other = (lab[:, None] != np.arange(ways)[None])  # [S, C]: support row s is another class than c
                mu = (cos_s * other).sum(1) / other.sum(0)  # [q, C]
                sd = np.sqrt(((cos_s - mu[:, None]) ** 2 * other).sum(1) / other.sum(0)) + 1e-3
                zs.append(-((cos_q - mu) / sd).max(-1))
                zs.append(-(cos_q - mu).max(-1))
            Z.append(np.stack(zs, -1))
    out[split] = (np.stack(X), np.stack(Z))
    print(split, f"{time.time() - t0:.0f}s", flush=True)
(fx, fz), (tx, tz) = out["mirrored"], out["test"]
y = np.tile(np.r_[np.zeros(ways), 1, 1], len(fx))
def report(a, b, label):
    mean, scale, w, bias = fit_logistic(a.reshape(-1, a.shape[-1]), y)
    ts = ((b - mean) / scale) @ w + bias; lim = np.quantile(ts[:, :ways], 0.95)
    print(f"{label:30} AUROC novel {auroc(ts[:, :ways].ravel(), ts[:, ways]):.3f} scribble {auroc(ts[:, :ways].ravel(), ts[:, ways + 1]):.3f}"
          f"  at 5 % of held-out in-set: novel {100 * (ts[:, ways] > lim).mean():.1f} scribble {100 * (ts[:, ways + 1] > lim).mean():.1f}")
report(fx, tx, "the product's 9 inputs")
report(np.concatenate([fx, fz[..., 0::2]], -1), np.concatenate([tx, tz[..., 0::2]], -1), "+ 8 z (other classes' rows)")
report(np.concatenate([fx, fz[..., 1::2]], -1), np.concatenate([tx, tz[..., 1::2]], -1), "+ 8 differences from their mean")
