"""Experiment: similarities normalised per class by a bank of reference drawings. After adaptation,
R drawings of training characters (fixed, as a bundle would ship them) are each predicted in one
batch with the support set, like a query; per class and per block, the mean and deviation of their
cosine with the class mean turn every query's cosine into a z-score, so a class that every drawing
resembles (a dot, a stroke) no longer absorbs scribbles. Saves the product's 9 inputs and the 8
blocks' largest z-scores (and the cosines per class) for the fit in reference_fit.py."""
import sys, time
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, ".")
from bundle.open_set import score_inputs
from tools.open_set_tasks import OpenSetTasks, embed, query_batches
from training.tasks import to_tensor
torch.set_num_threads(1)
ways, count, seed, R = (int(a) for a in sys.argv[1:5])
ONE = "--one-batch" in sys.argv  # the bank in one batch with the support set, not one batch each
SHOTS = int(next((a.split("=")[1] for a in sys.argv if a.startswith("--shots=")), 1))
tasks = OpenSetTasks(Path("checkpoints/omniglot-20w1s/checkpoint.pt"), Path("static/models/omniglot-20w"), Path("../shared/data/omniglot"))
train = tasks.images["train"]
pick = np.random.default_rng(1234).choice(len(train), R, replace=False)
bank = to_tensor(train[pick, 0])  # [R, 1, 28, 28]: one drawing each of R training characters

def cosines(feats, lab, shapes):
    """feats [q, n+1, D] -> [q, 2L, C]: cosine of the last row with each class mean, flat and pooled per block."""
    onehot = np.eye(ways)[lab] / np.bincount(lab, minlength=ways)
    out, start = [], 0
    flat, pooled = [], []
    for c, h, w in shapes:
        x = feats[..., start:start + c * h * w]; start += c * h * w
        for part, kind in ((x, flat), (x.reshape(*x.shape[:-1], c, h * w).mean(-1), pooled)):
            means = np.einsum("sc,qsd->qcd", onehot, part[:, :-1]); q = part[:, -1]
            cos = np.einsum("qcd,qd->qc", means, q) / np.maximum(np.linalg.norm(means, axis=-1) * np.linalg.norm(q, axis=-1)[:, None], 1e-12)
            kind.append(cos)
    return np.stack(flat + pooled, 1)

out = {}
for split in ("mirrored", "test"):
    t0 = time.time(); X, C, B, Lg = [], [], [], []
    for _, params, support, labels, queries in tasks.adapted(split, ways, SHOTS, count, seed):
        for t in range(len(support)):
            sup, lab = support[t], labels[t].numpy()
            rows = queries[t] if ONE else torch.cat([queries[t], bank])
            q, n = len(rows), len(sup)
            b = query_batches(sup, rows).reshape(1, -1, *sup.shape[1:])
            with torch.no_grad():
                blocks, _, logits = embed(tasks.spec, [p[t:t+1] for p in params], b, batches=q)
            feats = torch.cat([h.reshape(n + 1, q, -1).transpose(0, 1) for h in blocks], -1).double().numpy()
            shapes = [list(h.shape[1:]) for h in blocks]
            z = logits[0].reshape(n + 1, q, -1)[-1].double()
            nq = ways + 2
            X.append(score_inputs(feats[:nq], z[:nq].softmax(-1).numpy(), lab, ways, shapes))
            cos = cosines(feats, lab, shapes)  # [q, 8, C]
            if ONE:  # rows: the support set, then the whole bank, in one batch
                one = torch.cat([sup, bank])[None]
                with torch.no_grad():
                    ob, _, _ = embed(tasks.spec, [p[t:t+1] for p in params], one)
                of = torch.cat([h.reshape(n + R, -1) for h in ob], -1).double().numpy()  # [n + R, D]
                bank_rows = np.stack([np.concatenate([of[:n], of[n + r:n + r + 1]]) for r in range(R)])  # [R, n+1, D]
                B.append(cosines(bank_rows, lab, shapes))
            else:
                B.append(cos[nq:])
            C.append(cos[:nq]); Lg.append(z[:nq].numpy())
    out[split] = [np.stack(a) for a in (X, C, B, Lg)]
    print(split, f"{time.time() - t0:.0f}s", flush=True)
np.savez(f"/tmp/os/reference-{ways}x{SHOTS}-R{R}{'-one' if ONE else ''}-{count}.npz", **{f"{s}_{k}": v for s, a in out.items() for k, v in zip(("x", "cos", "bank", "logits"), a)})
